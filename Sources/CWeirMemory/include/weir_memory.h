// Weir's allocator for libevent, nghttp2 and OpenSSL: per-thread free lists in front of malloc (see memory.c).
// Only WeirIO uses it.
#ifndef WEIR_MEMORY_H
#define WEIR_MEMORY_H
#include <stddef.h>

/// Whether the free lists are libevent's allocator (installed before main, by a constructor).
int weir_mem_installed(void);

/// Whether the free lists are OpenSSL's allocator too (installed by the same constructor; OpenSSL
/// refuses if it allocated before).
int weir_mem_openssl_installed(void);

/// Allocates, zero-allocates, reallocates and frees through the free lists (libevent's, nghttp2's
/// and OpenSSL's allocator; callable directly for tests).
void *weir_mem_malloc(size_t size);
void *weir_mem_calloc(size_t count, size_t size);
void *weir_mem_realloc(void *ptr, size_t size);
void weir_mem_free(void *ptr);

/// The most free blocks a thread keeps of the class that serves `size` bytes (0: none are kept).
int weir_mem_kept_blocks(size_t size);

/// How many free blocks the calling thread's lists keep now (for tests).
int weir_mem_thread_free_blocks(void);

/// Gives the calling thread's free blocks back to malloc (for tests).
void weir_mem_thread_release(void);

/// How many free blocks exiting threads have given back to malloc so far (for tests).
long weir_mem_released_at_thread_exit(void);

#endif
