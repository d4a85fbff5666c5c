/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* The writer-preferring rwsem of rwsem.h; every field under s->lock. */
#include "rwsem.h"

void ms_rwsem_init_locks(struct ms_rwsem *s)
{
	pthread_mutex_init(&s->lock, NULL);
	pthread_cond_init(&s->readers_wait, NULL);
	pthread_cond_init(&s->writer_wait, NULL);
	s->readers = 0;
	s->writers_waiting = 0;
	s->writer = false;
}

void ms_rwsem_destroy(struct ms_rwsem *s)
{
	pthread_cond_destroy(&s->readers_wait);
	pthread_cond_destroy(&s->writer_wait);
	pthread_mutex_destroy(&s->lock);
}

void ms_rwsem_down_read(struct ms_rwsem *s)
{
	pthread_mutex_lock(&s->lock);
	/* Fairness: a waiting writer holds back new readers. */
	while (s->writer || s->writers_waiting)
		pthread_cond_wait(&s->readers_wait, &s->lock);
	s->readers++;
	pthread_mutex_unlock(&s->lock);
}

bool ms_rwsem_down_read_trylock(struct ms_rwsem *s)
{
	bool got;

	pthread_mutex_lock(&s->lock);
	got = !s->writer && !s->writers_waiting;
	s->readers += got;
	pthread_mutex_unlock(&s->lock);
	return got;
}

/* False, and nothing changes, when no reader holds it. */
bool ms_rwsem_up_read(struct ms_rwsem *s)
{
	bool held;

	pthread_mutex_lock(&s->lock);
	held = s->readers > 0;
	if (held && --s->readers == 0 && s->writers_waiting)
		pthread_cond_signal(&s->writer_wait);
	pthread_mutex_unlock(&s->lock);
	return held;
}

void ms_rwsem_down_write(struct ms_rwsem *s)
{
	pthread_mutex_lock(&s->lock);
	s->writers_waiting++;
	while (s->writer || s->readers)
		pthread_cond_wait(&s->writer_wait, &s->lock);
	s->writers_waiting--;
	s->writer = true;
	pthread_mutex_unlock(&s->lock);
}

void ms_rwsem_up_write(struct ms_rwsem *s)
{
	pthread_mutex_lock(&s->lock);
	s->writer = false;
	if (s->writers_waiting)
		pthread_cond_signal(&s->writer_wait);
	else
		pthread_cond_broadcast(&s->readers_wait);
	pthread_mutex_unlock(&s->lock);
}

long ms_rwsem_readers(struct ms_rwsem *s)
{
	long n;

	pthread_mutex_lock(&s->lock);
	n = s->readers;
	pthread_mutex_unlock(&s->lock);
	return n;
}

unsigned int ms_rwsem_writers_waiting(struct ms_rwsem *s)
{
	unsigned int n;

	pthread_mutex_lock(&s->lock);
	n = s->writers_waiting;
	pthread_mutex_unlock(&s->lock);
	return n;
}
