// Weir's allocator for libevent, nghttp2 and OpenSSL: per-thread free lists in front of malloc.
//
// libevent (event_set_mem_functions): every evbuffer segment ("chain") is a malloc of a power of two
// of at least 1 KiB. A keep-alive request's four buffers (client in, server out, server in, client
// out) each get one when the first bytes arrive and give it back when they are drained; those sizes
// are past glibc's thread cache (tcache ends at 1032 bytes), so each took the allocator's slow path.
// nghttp2 (its nghttp2_mem, HTTP2ServerSession): a stream's objects, frames and header copies, about
// five blocks per request. OpenSSL (CRYPTO_set_mem_functions): with SSL_MODE_RELEASE_BUFFERS a TLS
// connection takes its record buffers when a record comes or goes and gives them back when they are
// empty, and its ciphers allocate per record: six blocks per keep-alive request over TLS. Here a
// block a thread frees serves that thread's next allocation of its size class, as haproxy's pools do.
//
// A block is one malloc: a 16-byte header naming its class, then the caller's bytes. A class keeps
// a bounded number of free blocks per thread (about 256 KiB of each class, at most 512 blocks, 2 of
// the largest); a thread's blocks go back to malloc when it exits. A block may be freed on another
// thread than the one that allocated it (it joins that thread's lists).
//
// libevent and OpenSSL free every block with the function installed when it frees it, so the
// functions are installed before anything can allocate: by a constructor, before main (OpenSSL
// refuses them once it has allocated, and then keeps malloc).
#include "weir_memory.h"
#include <event2/event.h>
#include <openssl/crypto.h>
#include <pthread.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

/// Size classes 64 << 0 ... 64 << 12: 64 B to 256 KiB (a read's first segment is 64 KiB, those of
/// the larger reads that follow a full one 256 KiB).
#define WEIR_MEM_CLASSES 13

typedef struct weir_mem_header {
    int64_t size_class;   // 0 ..< WEIR_MEM_CLASSES, or -1 for a block of its own size (not kept)
    size_t size;          // the usable size
} weir_mem_header;

typedef struct weir_mem_cache {
    void *free_blocks[WEIR_MEM_CLASSES];   // each a list linked through the block's first word
    int free_counts[WEIR_MEM_CLASSES];
    int registered;   // 1: the exit destructor knows this cache; -1: the thread is exiting
} weir_mem_cache;

static __thread weir_mem_cache weir_mem_thread_cache;
static pthread_key_t weir_mem_exit_key;
static int weir_mem_is_installed;
static int weir_mem_openssl_is_installed;
static long weir_mem_blocks_released_at_exit;

static size_t weir_mem_class_size(int64_t c) { return (size_t)64 << c; }

/// The most free blocks a class keeps per thread: 256 KiB of it, at most 512 blocks (nghttp2 holds
/// that many small ones with 100 streams at once on a connection), at least 2 (the 128 and 256 KiB
/// classes: 768 KiB together).
static int weir_mem_class_cap(int64_t c) {
    size_t n = ((size_t)256 * 1024) / weir_mem_class_size(c);
    return n > 512 ? 512 : n < 2 ? 2 : (int)n;
}

static int64_t weir_mem_class_of(size_t size) {
    if (size <= 64) return 0;
    if (size > weir_mem_class_size(WEIR_MEM_CLASSES - 1)) return -1;
    // The smallest c with 64 << c >= size.
    return 64 - __builtin_clzll((unsigned long long)(size - 1)) - 6;
}

/// Gives a cache's free blocks back to malloc (at thread exit, and for tests).
static void weir_mem_cache_release(weir_mem_cache *cache) {
    for (int c = 0; c < WEIR_MEM_CLASSES; c++) {
        void *block = cache->free_blocks[c];
        while (block) {
            void *next = *(void **)((weir_mem_header *)block + 1);
            free(block);
            block = next;
        }
        cache->free_blocks[c] = NULL;
        cache->free_counts[c] = 0;
    }
}

/// At thread exit: the free blocks go back, and what the thread frees after this is not kept.
static void weir_mem_thread_exit(void *cache) {
    weir_mem_cache *c = (weir_mem_cache *)cache;
    c->registered = -1;
    long kept = 0;
    for (int i = 0; i < WEIR_MEM_CLASSES; i++) kept += c->free_counts[i];
    weir_mem_cache_release(c);
    __atomic_fetch_add(&weir_mem_blocks_released_at_exit, kept, __ATOMIC_RELAXED);
}

void *weir_mem_malloc(size_t size) {
    int64_t c = weir_mem_class_of(size);
    weir_mem_cache *cache = &weir_mem_thread_cache;
    if (c >= 0 && cache->free_blocks[c]) {
        weir_mem_header *h = (weir_mem_header *)cache->free_blocks[c];
        cache->free_blocks[c] = *(void **)(h + 1);
        cache->free_counts[c]--;
        return h + 1;
    }
    size_t usable = c >= 0 ? weir_mem_class_size(c) : size;
    if (usable > SIZE_MAX - sizeof(weir_mem_header)) return NULL;
    weir_mem_header *h = (weir_mem_header *)malloc(sizeof(weir_mem_header) + usable);
    if (!h) return NULL;
    h->size_class = c;
    h->size = usable;
    return h + 1;
}

void weir_mem_free(void *ptr) {
    if (!ptr) return;
    weir_mem_header *h = (weir_mem_header *)ptr - 1;
    int64_t c = h->size_class;
    weir_mem_cache *cache = &weir_mem_thread_cache;
    if (c < 0 || cache->free_counts[c] >= weir_mem_class_cap(c)) { free(h); return; }
    if (cache->registered != 1) {
        if (cache->registered < 0) { free(h); return; }
        // Once per thread: its free blocks go back to malloc when it exits.
        cache->registered = 1;
        pthread_setspecific(weir_mem_exit_key, cache);
    }
    *(void **)ptr = cache->free_blocks[c];
    cache->free_blocks[c] = h;
    cache->free_counts[c]++;
}

void *weir_mem_calloc(size_t count, size_t size) {
    if (size != 0 && count > SIZE_MAX / size) return NULL;
    void *p = weir_mem_malloc(count * size);
    if (p) memset(p, 0, count * size);
    return p;
}

void *weir_mem_realloc(void *ptr, size_t size) {
    if (!ptr) return weir_mem_malloc(size);
    if (size == 0) { weir_mem_free(ptr); return NULL; }
    weir_mem_header *h = (weir_mem_header *)ptr - 1;
    if (size <= h->size) return ptr;
    void *bigger = weir_mem_malloc(size);
    if (!bigger) return NULL;   // the old block stays valid, as with realloc
    memcpy(bigger, ptr, h->size);
    weir_mem_free(ptr);
    return bigger;
}

// OpenSSL's signatures carry the caller's file and line (for its debugging allocators).
static void *weir_mem_openssl_malloc(size_t size, const char *file, int line) {
    (void)file; (void)line;
    return weir_mem_malloc(size);
}

static void *weir_mem_openssl_realloc(void *ptr, size_t size, const char *file, int line) {
    (void)file; (void)line;
    return weir_mem_realloc(ptr, size);
}

static void weir_mem_openssl_free(void *ptr, const char *file, int line) {
    (void)file; (void)line;
    weir_mem_free(ptr);
}

__attribute__((constructor)) static void weir_mem_install(void) {
    if (pthread_key_create(&weir_mem_exit_key, weir_mem_thread_exit) != 0) return;   // both keep malloc
    event_set_mem_functions(weir_mem_malloc, weir_mem_realloc, weir_mem_free);
    weir_mem_is_installed = 1;
    weir_mem_openssl_is_installed =
        CRYPTO_set_mem_functions(weir_mem_openssl_malloc, weir_mem_openssl_realloc, weir_mem_openssl_free) == 1;
}

int weir_mem_installed(void) { return weir_mem_is_installed; }

int weir_mem_openssl_installed(void) { return weir_mem_openssl_is_installed; }

int weir_mem_kept_blocks(size_t size) {
    int64_t c = weir_mem_class_of(size);
    return c < 0 ? 0 : weir_mem_class_cap(c);
}

int weir_mem_thread_free_blocks(void) {
    int n = 0;
    for (int c = 0; c < WEIR_MEM_CLASSES; c++) n += weir_mem_thread_cache.free_counts[c];
    return n;
}

void weir_mem_thread_release(void) { weir_mem_cache_release(&weir_mem_thread_cache); }

long weir_mem_released_at_thread_exit(void) { return __atomic_load_n(&weir_mem_blocks_released_at_exit, __ATOMIC_RELAXED); }

