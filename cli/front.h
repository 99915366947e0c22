/* front.h - what q4train asks of the processes it runs as: one process (front_single.c, in
 * build/q4train) or mpirun's ranks training data-parallel (front_mpi.c, in
 * build/q4train-mpi). The core knows nothing of MPI: front_mpi.c gives the session a
 * q4_combiner (q4.h) over MPI and the rest of q4train stays the same. */
#ifndef Q4_FRONT_H
#define Q4_FRONT_H

#include "../core/include/q4.h"

/* Starts the processes (may change argc and argv); returns 0 or an exit status. */
int front_start(int *argc, char ***argv);
/* This process's rank and the process count (one process: 0 and 1); the processes that share
 * this machine (threads are split between them). */
int front_rank(void);
int front_processes(void);
int front_local_processes(void);
/* "q4train" or "q4train-mpi": the name messages begin with */
const char *front_name(void);
/* Makes a session one of the processes (its micro_batch must be > 0 when there are several
 * of them; alone nothing changes). 0 or a message in err. */
int front_attach(q4_session *session, char *err, size_t size);
/* The first rank whose `text` differs from rank 0's, or -1 when every rank's is the same. */
int front_first_different(const char *text);
/* 1 when any process has `flag` set: every process stops at the same step (Ctrl-C reaches
 * them at different moments). */
int front_any(int flag);
/* The time spent combining and the bytes this process sent, since the start. */
void front_combine_stats(double *seconds, double *bytes, long long *calls);
/* Ends the processes: rc 0 everywhere; another rc ends every process at once (a rank that
 * failed must not leave the others waiting for it). Returns rc. */
int front_finish(int rc);

#endif
