/* A persistent pool of worker threads for the CPU backend. The calling thread takes part, so a
 * pool of N threads starts N-1 workers. Tasks are handed out dynamically, so kernels must make
 * every task write its own outputs: results never depend on which thread ran a task, which keeps
 * them bit-identical for any thread count. */
#ifndef ORX_THREADPOOL_H
#define ORX_THREADPOOL_H

#include <stdint.h>

typedef struct orx_pool orx_pool;

/* fn(arg, task) for task in [0, ntasks) */
typedef void (*orx_task_fn)(void *arg, int64_t task);

/* NULL on failure (out of memory or thread creation refused). */
orx_pool *orx_pool_create(int threads);
void orx_pool_destroy(orx_pool *pool);
int orx_pool_threads(const orx_pool *pool);

/* Runs all tasks and returns when they are done. Called from inside a task (nested), or with
 * ntasks == 1, it runs them on the calling thread. */
void orx_pool_run(orx_pool *pool, int64_t ntasks, orx_task_fn fn, void *arg);

#endif
