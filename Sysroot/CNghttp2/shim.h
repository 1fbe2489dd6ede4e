// libnghttp2 (Debian 12: 1.52 with the 2023/2024 security backports: stream_reset_rate_limit and
// max_continuations options). Only WeirIO imports this module.
#include <nghttp2/nghttp2.h>

#include <stdlib.h>
#include <string.h>
#include <stdint.h>

// A cache of freed blocks for nghttp2's own allocations (its stream objects, outgoing frames, header
// copies: about five per request), so that a request's allocations come from free lists instead of
// malloc and free. Blocks up to 4 KiB are rounded up to one of 7 size classes and carry a 16-byte
// header that names the class (larger blocks go to malloc, marked as such). Each class keeps a bounded
// number of free blocks. One pool serves one thread: every session it is given to runs on that thread.
#define WEIR_H2_POOL_CLASSES 7

typedef struct weir_h2_block_header {
    int64_t size_class;   // 0..6, or -1 for a block from malloc of its own size
    size_t size;          // the usable size
} weir_h2_block_header;

typedef struct weir_h2_pool {
    void *free_blocks[WEIR_H2_POOL_CLASSES];   // each a list linked through its first word
    int free_counts[WEIR_H2_POOL_CLASSES];
} weir_h2_pool;

static inline size_t weir_h2_class_size(int64_t size_class) { return (size_t)64 << size_class; }

/// The most free blocks a class keeps: 512 of each size up to 512 bytes, 64 of the larger (at most
/// about 0.9 MiB per loop, kept only after a burst of streams). With 100 concurrent streams on one
/// connection, 0.3 of nghttp2's 5 allocations per request still reach malloc (none with no bound).
static inline int weir_h2_class_cap(int64_t size_class) { return size_class <= 3 ? 512 : 64; }

static inline void *weir_h2_malloc(size_t size, void *user) {
    weir_h2_pool *pool = (weir_h2_pool *)user;
    int64_t size_class = -1;
    for (int64_t c = 0; c < WEIR_H2_POOL_CLASSES; c++) {
        if (size <= weir_h2_class_size(c)) { size_class = c; break; }
    }
    if (size_class >= 0 && pool->free_blocks[size_class]) {
        weir_h2_block_header *h = (weir_h2_block_header *)pool->free_blocks[size_class];
        pool->free_blocks[size_class] = *(void **)(h + 1);
        pool->free_counts[size_class]--;
        return h + 1;
    }
    size_t usable = size_class >= 0 ? weir_h2_class_size(size_class) : size;
    if (usable > SIZE_MAX - sizeof(weir_h2_block_header)) return NULL;
    weir_h2_block_header *h = (weir_h2_block_header *)malloc(sizeof(weir_h2_block_header) + usable);
    if (!h) return NULL;
    h->size_class = size_class;
    h->size = usable;
    return h + 1;
}

static inline void weir_h2_free(void *ptr, void *user) {
    if (!ptr) return;
    weir_h2_pool *pool = (weir_h2_pool *)user;
    weir_h2_block_header *h = (weir_h2_block_header *)ptr - 1;
    int64_t c = h->size_class;
    if (c < 0 || pool->free_counts[c] >= weir_h2_class_cap(c)) { free(h); return; }
    *(void **)ptr = pool->free_blocks[c];
    pool->free_blocks[c] = h;
    pool->free_counts[c]++;
}

static inline void *weir_h2_calloc(size_t count, size_t size, void *user) {
    if (size != 0 && count > SIZE_MAX / size) return NULL;
    void *p = weir_h2_malloc(count * size, user);
    if (p) memset(p, 0, count * size);
    return p;
}

static inline void *weir_h2_realloc(void *ptr, size_t size, void *user) {
    if (!ptr) return weir_h2_malloc(size, user);
    weir_h2_block_header *h = (weir_h2_block_header *)ptr - 1;
    if (size <= h->size) return ptr;
    void *bigger = weir_h2_malloc(size, user);
    if (!bigger) return NULL;   // the old block stays valid, as with realloc
    memcpy(bigger, ptr, h->size);
    weir_h2_free(ptr, user);
    return bigger;
}

/// A new, empty pool (NULL when out of memory); `weir_h2_pool_free` gives back its free blocks.
static inline weir_h2_pool *weir_h2_pool_new(void) { return (weir_h2_pool *)calloc(1, sizeof(weir_h2_pool)); }

/// Frees the pool and its free blocks. Precondition: no session that uses it is left.
static inline void weir_h2_pool_free(weir_h2_pool *pool) {
    for (int c = 0; c < WEIR_H2_POOL_CLASSES; c++) {
        void *block = pool->free_blocks[c];
        while (block) {
            void *next = *(void **)((weir_h2_block_header *)block + 1);
            free(block);
            block = next;
        }
    }
    free(pool);
}

/// The nghttp2 allocator that uses `pool` (for nghttp2_session_server_new3).
static inline nghttp2_mem weir_h2_pool_mem(weir_h2_pool *pool) {
    nghttp2_mem mem = { pool, weir_h2_malloc, weir_h2_free, weir_h2_calloc, weir_h2_realloc };
    return mem;
}
