/* pool.c - a small pthread pool: workers sleep until a run is posted, claim task indices
 * from a shared counter, and the last one to finish wakes the caller. No busy waiting. */
#include "pool.h"

#include "../include/q4.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>

typedef struct worker {
    q4_pool *pool;
    pthread_t thread;
    int index;
} worker;

struct q4_pool {
    int threads;
    worker *workers;
    pthread_mutex_t mutex;
    pthread_cond_t wake;     /* a new run was posted, or shutdown */
    pthread_cond_t finished; /* all workers left the current run */
    unsigned long generation;
    int shutdown;
    int busy_workers;
    /* the current run */
    q4_task_fn fn;
    void *context;
    int tasks;
    atomic_int next_task;
};

static void run_tasks(q4_pool *pool, int thread) {
    for (;;) {
        int t = atomic_fetch_add_explicit(&pool->next_task, 1, memory_order_relaxed);
        if (t >= pool->tasks) break;
        pool->fn(pool->context, t, thread);
    }
}

static void *worker_main(void *arg) {
    worker *self = arg;
    q4_pool *pool = self->pool;
    unsigned long seen = 0;
    pthread_mutex_lock(&pool->mutex);
    for (;;) {
        while (!pool->shutdown && pool->generation == seen) pthread_cond_wait(&pool->wake, &pool->mutex);
        if (pool->shutdown) break;
        seen = pool->generation;
        pthread_mutex_unlock(&pool->mutex);
        run_tasks(pool, self->index);
        pthread_mutex_lock(&pool->mutex);
        if (--pool->busy_workers == 0) pthread_cond_signal(&pool->finished);
    }
    pthread_mutex_unlock(&pool->mutex);
    return NULL;
}

q4_pool *q4_pool_create(int threads) {
    if (threads < 1) threads = 1;
    q4_pool *pool = calloc(1, sizeof *pool);
    if (!pool) return NULL;
    pool->threads = 1;
    atomic_init(&pool->next_task, 0);
    if (threads == 1) return pool;
    pool->workers = calloc((size_t)threads - 1, sizeof *pool->workers);
    if (!pool->workers) {
        free(pool);
        return NULL;
    }
    pthread_mutex_init(&pool->mutex, NULL);
    pthread_cond_init(&pool->wake, NULL);
    pthread_cond_init(&pool->finished, NULL);
    for (int i = 0; i < threads - 1; i++) {
        pool->workers[i].pool = pool;
        pool->workers[i].index = i + 1;
        if (pthread_create(&pool->workers[i].thread, NULL, worker_main, &pool->workers[i]) != 0) {
            q4_pool_destroy(pool);
            return NULL;
        }
        pool->threads++;
    }
    return pool;
}

void q4_pool_destroy(q4_pool *pool) {
    if (!pool) return;
    if (pool->workers) {
        pthread_mutex_lock(&pool->mutex);
        pool->shutdown = 1;
        pthread_cond_broadcast(&pool->wake);
        pthread_mutex_unlock(&pool->mutex);
        for (int i = 0; i < pool->threads - 1; i++) pthread_join(pool->workers[i].thread, NULL);
        pthread_cond_destroy(&pool->wake);
        pthread_cond_destroy(&pool->finished);
        pthread_mutex_destroy(&pool->mutex);
        free(pool->workers);
    }
    free(pool);
}

int q4_pool_threads(const q4_pool *pool) { return pool ? pool->threads : 1; }

void q4_pool_run(q4_pool *pool, int tasks, q4_task_fn fn, void *context) {
    if (tasks <= 0) return;
    if (!pool || pool->threads == 1 || tasks == 1) {
        for (int t = 0; t < tasks; t++) fn(context, t, 0);
        return;
    }
    pthread_mutex_lock(&pool->mutex);
    pool->fn = fn;
    pool->context = context;
    pool->tasks = tasks;
    atomic_store_explicit(&pool->next_task, 0, memory_order_relaxed);
    pool->busy_workers = pool->threads - 1;
    pool->generation++;
    pthread_cond_broadcast(&pool->wake);
    pthread_mutex_unlock(&pool->mutex);

    run_tasks(pool, 0);

    pthread_mutex_lock(&pool->mutex);
    while (pool->busy_workers > 0) pthread_cond_wait(&pool->finished, &pool->mutex);
    pthread_mutex_unlock(&pool->mutex);
}

/* ------------------------------------------------------------ q4_threads_probe */

#define PROBE_TASKS 64
#define PROBE_ITERATIONS 100000

static void probe_task(void *context, int task, int thread) {
    (void)thread;
    /* four independent multiply-add chains: arithmetic only, nothing shared but the result */
    float x0 = 1.0f + (float)task * 1e-6f, x1 = x0 + 1e-3f, x2 = x0 + 2e-3f, x3 = x0 + 3e-3f;
    for (int i = 0; i < PROBE_ITERATIONS; i++) {
        x0 = x0 * 0.9999999f + 1e-7f;
        x1 = x1 * 0.9999999f + 1e-7f;
        x2 = x2 * 0.9999999f + 1e-7f;
        x3 = x3 * 0.9999999f + 1e-7f;
    }
    ((volatile float *)context)[task] = x0 + x1 + x2 + x3;
}

double q4_threads_probe(int threads) {
    q4_pool *pool = q4_pool_create(threads);
    if (!pool) return -1;
    float results[PROBE_TASKS];
    q4_pool_run(pool, PROBE_TASKS, probe_task, results); /* wakes the threads */
    double best = -1;
    for (int repeat = 0; repeat < 2; repeat++) {
        double t0 = q4_now();
        q4_pool_run(pool, PROBE_TASKS, probe_task, results);
        double t = q4_now() - t0;
        if (best < 0 || t < best) best = t;
    }
    q4_pool_destroy(pool);
    return best;
}
