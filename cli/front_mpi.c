/* front_mpi.c - q4train as mpirun's ranks (build/q4train-mpi, front.h): each rank runs the
 * same session on the same data and holds some micro-batches of every step; this file is the
 * q4_combiner that lets them meet over MPI.
 *
 * gather: the rows of per-micro-batch sums (BatchNorm, the loss), an in-place allgather; each
 *   rank then adds every row in micro-batch order itself.
 * sum: a layer's weight and bias gradients. A rank cannot add its own micro-batches first (in
 *   floats, (a + b) + c is not a + (b + c), and the order is fixed by the micro-batch index,
 *   not by the rank count), so every held micro-batch's gradient travels apart: the array is
 *   cut into one slice per rank; an all-to-all sends each rank the slice it owns of every
 *   micro-batch (they arrive in rank order, which is micro-batch order); the owner adds them
 *   in that order; an allgather gives every rank every slice. Bytes sent by a rank holding h
 *   of M micro-batches, per array of C floats: about 4C(h + 1)(P - 1)/P.
 *
 * MPI's default error handler stays: a rank that dies or fails a call ends the job, and a
 * rank whose q4train fails ends every rank with MPI_Abort (front_finish). */
#include <mpi.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "front.h"

static int rank, processes = 1, local_processes = 1;
static double combine_seconds, combine_bytes;
static long long combine_calls;

typedef struct buffers {
    int *counts, *displs, *counts2, *displs2;
    float *send, *recv;
    size_t send_floats, recv_floats;
} buffers;
static buffers buf;
static q4_combiner combiner;

static int grow(float **p, size_t *have, size_t need) {
    if (need <= *have) return 0;
    float *q = realloc(*p, need * sizeof(float));
    if (!q) return -1;
    *p = q;
    *have = need;
    return 0;
}

static void gather(void *context, double *rows, long row_values, int micro_total) {
    (void)context;
    double t = MPI_Wtime();
    for (int r = 0; r < processes; r++) {
        int first, held;
        q4_micro_share(micro_total, processes, r, &first, &held);
        buf.counts[r] = (int)(held * row_values);
        buf.displs[r] = (int)(first * row_values);
    }
    MPI_Allgatherv(MPI_IN_PLACE, 0, MPI_DATATYPE_NULL, rows, buf.counts, buf.displs, MPI_DOUBLE, MPI_COMM_WORLD);
    combine_bytes += (double)buf.counts[rank] * sizeof(double) * (processes - 1);
    combine_seconds += MPI_Wtime() - t;
    combine_calls++;
}

/* slice r of an array of count floats: [count * r / P, count * (r + 1) / P) */
static long slice_begin(long count, int r) { return count * r / processes; }

static void sum(void *context, float *out, const float *held_rows, long count, int micro_total) {
    (void)context;
    double t = MPI_Wtime();
    int my_first, my_held;
    q4_micro_share(micro_total, processes, rank, &my_first, &my_held);
    long my_begin = slice_begin(count, rank), my_len = slice_begin(count, rank + 1) - my_begin;
    if (grow(&buf.send, &buf.send_floats, (size_t)my_held * (size_t)count + 1) ||
        grow(&buf.recv, &buf.recv_floats, (size_t)micro_total * (size_t)my_len + 1))
        MPI_Abort(MPI_COMM_WORLD, 3); /* out of memory: no rank may go on alone */
    /* to each rank, its slice of every micro-batch held here, in micro-batch order */
    long at = 0;
    for (int r = 0; r < processes; r++) {
        long begin = slice_begin(count, r), len = slice_begin(count, r + 1) - begin;
        buf.displs[r] = (int)at;
        for (int j = 0; j < my_held; j++, at += len)
            memcpy(buf.send + at, held_rows + (long)j * count + begin, (size_t)len * sizeof(float));
        buf.counts[r] = (int)(at - buf.displs[r]);
        int first, held;
        q4_micro_share(micro_total, processes, r, &first, &held);
        buf.counts2[r] = (int)(held * my_len);
        buf.displs2[r] = (int)(first * my_len);
    }
    MPI_Alltoallv(buf.send, buf.counts, buf.displs, MPI_FLOAT, buf.recv, buf.counts2, buf.displs2, MPI_FLOAT,
                  MPI_COMM_WORLD);
    double sent = (double)(at - buf.counts[rank]) * sizeof(float);
    /* this rank's slice: every micro-batch's added in micro-batch order */
    float *mine = out + my_begin;
    memcpy(mine, buf.recv, (size_t)my_len * sizeof(float));
    for (int j = 1; j < micro_total; j++) {
        const float *row = buf.recv + (long)j * my_len;
        for (long i = 0; i < my_len; i++) mine[i] += row[i];
    }
    for (int r = 0; r < processes; r++) {
        buf.displs[r] = (int)slice_begin(count, r);
        buf.counts[r] = (int)(slice_begin(count, r + 1) - buf.displs[r]);
    }
    MPI_Allgatherv(MPI_IN_PLACE, 0, MPI_DATATYPE_NULL, out, buf.counts, buf.displs, MPI_FLOAT, MPI_COMM_WORLD);
    combine_bytes += sent + (double)my_len * sizeof(float) * (processes - 1);
    combine_seconds += MPI_Wtime() - t;
    combine_calls++;
}

int front_start(int *argc, char ***argv) {
    if (MPI_Init(argc, argv) != MPI_SUCCESS) return 1;
    MPI_Comm_rank(MPI_COMM_WORLD, &rank);
    MPI_Comm_size(MPI_COMM_WORLD, &processes);
    MPI_Comm local;
    MPI_Comm_split_type(MPI_COMM_WORLD, MPI_COMM_TYPE_SHARED, rank, MPI_INFO_NULL, &local);
    MPI_Comm_size(local, &local_processes);
    MPI_Comm_free(&local);
    size_t n = (size_t)processes;
    buf.counts = calloc(n, sizeof(int));
    buf.displs = calloc(n, sizeof(int));
    buf.counts2 = calloc(n, sizeof(int));
    buf.displs2 = calloc(n, sizeof(int));
    if (!buf.counts || !buf.displs || !buf.counts2 || !buf.displs2) MPI_Abort(MPI_COMM_WORLD, 3);
    combiner = (q4_combiner){NULL, processes, rank, gather, sum};
    return 0;
}

int front_rank(void) { return rank; }
int front_processes(void) { return processes; }
int front_local_processes(void) { return local_processes; }
const char *front_name(void) { return "q4train-mpi"; }

int front_attach(q4_session *session, char *err, size_t size) {
    if (q4_session_set_combiner(session, &combiner) == Q4_OK) return 0;
    snprintf(err, size, "%s", q4_session_error(session));
    return 1;
}

int front_first_different(const char *text) {
    int length = (int)strlen(text) + 1;
    MPI_Bcast(&length, 1, MPI_INT, 0, MPI_COMM_WORLD);
    char *first = malloc((size_t)length);
    if (!first) MPI_Abort(MPI_COMM_WORLD, 3);
    if (rank == 0) memcpy(first, text, (size_t)length);
    MPI_Bcast(first, length, MPI_CHAR, 0, MPI_COMM_WORLD);
    int mine = strcmp(first, text) ? rank : processes, lowest = processes;
    free(first);
    MPI_Allreduce(&mine, &lowest, 1, MPI_INT, MPI_MIN, MPI_COMM_WORLD);
    return lowest < processes ? lowest : -1;
}

int front_any(int flag) {
    int any = 0;
    MPI_Allreduce(&flag, &any, 1, MPI_INT, MPI_MAX, MPI_COMM_WORLD);
    return any;
}

void front_combine_stats(double *seconds, double *bytes, long long *calls) {
    *seconds = combine_seconds;
    *bytes = combine_bytes;
    *calls = combine_calls;
}

int front_finish(int rc) {
    if (rc) MPI_Abort(MPI_COMM_WORLD, rc); /* the other ranks may be waiting in a step */
    MPI_Finalize();
    free(buf.send);
    free(buf.recv);
    free(buf.counts);
    free(buf.displs);
    free(buf.counts2);
    free(buf.displs2);
    return rc;
}
