/* aoelab: the NAS's volatile write cache, for vblade (LD_PRELOAD), so that a lab NAS can lose
 * power. Writes to AOELAB_NASCACHE_FILE, when it was opened without O_SYNC, are held in memory
 * as a page cache holds them and served to reads from there; a sector dirty for
 * AOELAB_NASCACHE_EXPIRE seconds (default 30, the kernel's dirty_expire) is written back, in
 * offset order and a batch per request served, as a flusher thread racing vblade would. SIGKILL
 * is the power cut: whatever was not written back is gone. SIGTERM is a clean shutdown: all is
 * written back first. Opened with O_SYNC (vblade -s), every write goes straight to the file. */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define SECTOR 512
#define BATCH 64 /* sectors written back per request served */

struct dirty {
	uint64_t key; /* sector + 1; 0 is an empty slot */
	double since;
	unsigned char data[SECTOR];
};

static struct dirty *table;
static size_t slots, used; /* slots: a power of two; used < slots / 2 */
static uint64_t *queue;    /* sectors due for writeback, in offset order */
static size_t queued, next_in_queue;
static double expire = 30, last_scan;
static int cached_fd = -1;
static volatile sig_atomic_t busy, exit_wanted;

static ssize_t (*real_pread)(int, void *, size_t, off_t);
static ssize_t (*real_pwrite)(int, const void *, size_t, off_t);
static int (*real_open)(const char *, int, ...);

static double now(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec + ts.tv_nsec / 1e9;
}

static size_t slot_of(uint64_t key)
{
	size_t i = (size_t)(key * 0x9E3779B97F4A7C15ull) & (slots - 1);
	while (table[i].key && table[i].key != key)
		i = (i + 1) & (slots - 1);
	return i;
}

static void grow(void)
{
	struct dirty *old = table;
	size_t old_slots = slots;
	slots = slots ? slots * 2 : 4096;
	table = calloc(slots, sizeof *table);
	if (!table)
		abort();
	for (size_t i = 0; i < old_slots; i++)
		if (old[i].key)
			table[slot_of(old[i].key)] = old[i];
	free(old);
}

static void forget(size_t i) /* linear probing's backward-shift delete */
{
	size_t j = i;
	table[i].key = 0;
	used--;
	for (;;) {
		j = (j + 1) & (slots - 1);
		if (!table[j].key)
			return;
		size_t home = (size_t)(table[j].key * 0x9E3779B97F4A7C15ull) & (slots - 1);
		if ((j > i && (home <= i || home > j)) || (j < i && home <= i && home > j)) {
			table[i] = table[j];
			table[j].key = 0;
			i = j;
		}
	}
}

static int write_back(uint64_t sector)
{
	if (!slots)
		return 0;
	size_t i = slot_of(sector + 1);
	if (!table[i].key)
		return 0;
	if (real_pwrite(cached_fd, table[i].data, SECTOR, (off_t)(sector * SECTOR)) != SECTOR)
		return -1;
	forget(i);
	return 0;
}

static int by_offset(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
	return x < y ? -1 : x > y;
}

static void flusher(int everything)
{
	double t = now();
	if (everything || (next_in_queue >= queued && t - last_scan >= 1)) {
		last_scan = t;
		free(queue);
		queue = malloc((used + 1) * sizeof *queue);
		if (!queue)
			abort();
		queued = next_in_queue = 0;
		for (size_t i = 0; i < slots; i++)
			if (table[i].key && (everything || t - table[i].since >= expire))
				queue[queued++] = table[i].key - 1;
		qsort(queue, queued, sizeof *queue, by_offset);
	}
	for (size_t n = 0; next_in_queue < queued && (everything || n < BATCH); n++)
		write_back(queue[next_in_queue++]);
}

static void shutdown_cleanly(int sig)
{
	(void)sig;
	if (busy) { /* inside a request: finish it, then shut down */
		exit_wanted = 1;
		return;
	}
	if (cached_fd >= 0)
		flusher(1);
	_exit(0);
}

static void leave(void)
{
	busy = 0;
	if (exit_wanted)
		shutdown_cleanly(SIGTERM);
}

__attribute__((constructor)) static void setup(void)
{
	real_pread = dlsym(RTLD_NEXT, "pread64");
	real_pwrite = dlsym(RTLD_NEXT, "pwrite64");
	real_open = dlsym(RTLD_NEXT, "open64");
	const char *text = getenv("AOELAB_NASCACHE_EXPIRE");
	if (text)
		expire = atof(text);
	signal(SIGTERM, shutdown_cleanly);
}

static int opened(const char *path, int flags, mode_t mode)
{
	int fd = real_open(path, flags, mode);
	const char *cached = getenv("AOELAB_NASCACHE_FILE");
	if (fd >= 0 && cached && strcmp(path, cached) == 0 && !(flags & O_SYNC))
		cached_fd = fd;
	return fd;
}

int open64(const char *path, int flags, ...)
{
	mode_t mode = 0;
	if (flags & (O_CREAT | O_TMPFILE)) {
		va_list ap;
		va_start(ap, flags);
		mode = va_arg(ap, mode_t);
		va_end(ap);
	}
	return opened(path, flags, mode);
}

int open(const char *path, int flags, ...) __attribute__((alias("open64")));

int __open64_2(const char *path, int flags)
{
	return opened(path, flags, 0);
}

int __open_2(const char *path, int flags) __attribute__((alias("__open64_2")));

ssize_t pread64(int fd, void *buf, size_t count, off_t offset)
{
	if (fd != cached_fd || count % SECTOR || offset % SECTOR)
		return real_pread(fd, buf, count, offset);
	busy = 1;
	ssize_t got = real_pread(fd, buf, count, offset);
	if (got >= 0 && slots) {
		for (size_t done = 0; done < count; done += SECTOR) {
			size_t i = slot_of((uint64_t)(offset + done) / SECTOR + 1);
			if (table[i].key) {
				memcpy((char *)buf + done, table[i].data, SECTOR);
				if ((ssize_t)(done + SECTOR) > got)
					got = (ssize_t)(done + SECTOR);
			}
		}
	}
	flusher(0);
	leave();
	return got;
}

ssize_t pread(int fd, void *buf, size_t count, off_t offset) __attribute__((alias("pread64")));

ssize_t pwrite64(int fd, const void *buf, size_t count, off_t offset)
{
	if (fd != cached_fd || count % SECTOR || offset % SECTOR)
		return real_pwrite(fd, buf, count, offset);
	busy = 1;
	double t = now();
	for (size_t done = 0; done < count; done += SECTOR) {
		if (used + 1 >= slots / 2)
			grow();
		uint64_t key = (uint64_t)(offset + done) / SECTOR + 1;
		size_t i = slot_of(key);
		if (!table[i].key) {
			table[i].key = key;
			table[i].since = t;
			used++;
		}
		memcpy(table[i].data, (const char *)buf + done, SECTOR);
	}
	flusher(0);
	leave();
	return (ssize_t)count;
}

ssize_t pwrite(int fd, const void *buf, size_t count, off_t offset)
	__attribute__((alias("pwrite64")));

int fsync(int fd)
{
	if (fd == cached_fd)
		flusher(1);
	return fdatasync(fd);
}
