/* pool.h - the one thread pool, shared by the native and browser builds. A run splits
 * work into numbered tasks; which thread runs a task never changes what it computes, so
 * results do not depend on the thread count. Idle workers sleep on a condition variable. */
#ifndef Q4_POOL_H
#define Q4_POOL_H

typedef struct q4_pool q4_pool;

/* task: index in [0, tasks); thread: index in [0, threads) for per-thread scratch. */
typedef void (*q4_task_fn)(void *context, int task, int thread);

/* threads counts the calling thread: 1 creates no workers. NULL if a thread or memory
 * could not be had. */
q4_pool *q4_pool_create(int threads);
void q4_pool_destroy(q4_pool *pool);
int q4_pool_threads(const q4_pool *pool);

/* Runs fn(context, t, thread) for t in [0, tasks) and returns when all are done. The
 * caller takes part. Not reentrant: tasks must not call q4_pool_run. */
void q4_pool_run(q4_pool *pool, int tasks, q4_task_fn fn, void *context);

#endif
