#include "threadpool.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>

struct orx_pool {
  int threads;
  pthread_t *workers;
  pthread_mutex_t mu;
  pthread_cond_t wake, done;
  /* the job being run; guarded by mu for publication, then read lock-free */
  uint64_t generation;
  int stop;
  orx_task_fn fn;
  void *arg;
  int64_t ntasks;
  atomic_int_fast64_t next;
  int busy; /* workers still inside the current job */
};

static _Thread_local int tls_in_pool;

static void drain(orx_pool *p) {
  for (;;) {
    int64_t t = atomic_fetch_add(&p->next, 1);
    if (t >= p->ntasks) return;
    p->fn(p->arg, t);
  }
}

static void *worker(void *arg) {
  orx_pool *p = arg;
  tls_in_pool = 1;
  uint64_t seen = 0;
  pthread_mutex_lock(&p->mu);
  for (;;) {
    while (!p->stop && p->generation == seen) pthread_cond_wait(&p->wake, &p->mu);
    if (p->stop) break;
    seen = p->generation;
    pthread_mutex_unlock(&p->mu);
    drain(p);
    pthread_mutex_lock(&p->mu);
    if (--p->busy == 0) pthread_cond_signal(&p->done);
  }
  pthread_mutex_unlock(&p->mu);
  return NULL;
}

orx_pool *orx_pool_create(int threads) {
  orx_pool *p = calloc(1, sizeof *p);
  if (!p) return NULL;
  p->threads = threads < 1 ? 1 : threads;
  pthread_mutex_init(&p->mu, NULL);
  pthread_cond_init(&p->wake, NULL);
  pthread_cond_init(&p->done, NULL);
  if (p->threads > 1) {
    p->workers = calloc((size_t)p->threads - 1, sizeof *p->workers);
    if (!p->workers) {
      orx_pool_destroy(p);
      return NULL;
    }
    for (int i = 0; i < p->threads - 1; i++) {
      if (pthread_create(&p->workers[i], NULL, worker, p) != 0) {
        p->threads = i + 1; /* destroy joins only the ones that started */
        orx_pool_destroy(p);
        return NULL;
      }
    }
  }
  return p;
}

void orx_pool_destroy(orx_pool *p) {
  if (!p) return;
  pthread_mutex_lock(&p->mu);
  p->stop = 1;
  pthread_cond_broadcast(&p->wake);
  pthread_mutex_unlock(&p->mu);
  if (p->workers)
    for (int i = 0; i < p->threads - 1; i++) pthread_join(p->workers[i], NULL);
  free(p->workers);
  pthread_mutex_destroy(&p->mu);
  pthread_cond_destroy(&p->wake);
  pthread_cond_destroy(&p->done);
  free(p);
}

int orx_pool_threads(const orx_pool *p) { return p ? p->threads : 1; }

void orx_pool_run(orx_pool *p, int64_t ntasks, orx_task_fn fn, void *arg) {
  if (ntasks <= 0) return;
  if (!p || p->threads == 1 || ntasks == 1 || tls_in_pool) {
    for (int64_t t = 0; t < ntasks; t++) fn(arg, t);
    return;
  }
  pthread_mutex_lock(&p->mu);
  p->fn = fn;
  p->arg = arg;
  p->ntasks = ntasks;
  atomic_store(&p->next, 0);
  p->busy = p->threads - 1;
  p->generation++;
  pthread_cond_broadcast(&p->wake);
  pthread_mutex_unlock(&p->mu);

  tls_in_pool = 1;
  drain(p);
  tls_in_pool = 0;

  pthread_mutex_lock(&p->mu);
  while (p->busy > 0) pthread_cond_wait(&p->done, &p->mu);
  pthread_mutex_unlock(&p->mu);
}
