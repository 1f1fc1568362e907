/* An order's own storage, and the indexes that find orders (chains.py's by_cl, by_oid,
 * exec_ids and by_seq, for the orders the C keeps).
 *
 * An Order keeps its texts (ClOrdIDs, ExecIDs, quantities as written ...) in one arena of its
 * own, as (offset, length) spans: a value is copied once, and an order is freed in one go.
 * The indexes are open-addressing tables whose keys live in the arena of the order they name;
 * deleting shifts the run back (no tombstones), so a table's size follows what it holds.
 */
#include "cscan.h"

#include <stdlib.h>

Order *
order_new(void)
{
    Order *o = calloc(1, sizeof(Order));
    if (o == NULL) {
        PyErr_NoMemory();
        return NULL;
    }
    o->refs = 1;
    o->live = 1;
    Span none = NONE_SPAN;
    o->order_id = o->secondary_id = o->symbol = o->side = o->qty = o->price = none;
    o->status = o->cum_text = o->avg_text = o->last_text = o->first_stamp = none;
    o->last_stamp = none;
    for (int i = 0; i < 4; i++)
        o->lk[i] = none;
    return o;
}

/* frees what the order holds (it is no longer the C's); the struct lives while referenced */
void
order_clear(Order *o)
{
    free(o->arena);
    free(o->cls);
    free(o->execs);
    free(o->fills);
    free(o->pending);
    free(o->sup);
    o->arena = NULL;
    o->cls = NULL;
    o->execs = NULL;
    o->fills = NULL;
    o->pending = NULL;
    o->sup = NULL;
    o->used = o->cap = 0;
    o->ncls = o->capcls = o->nexecs = o->capexecs = o->nfills = o->capfills = 0;
    o->npending = o->cappending = o->nsup = o->capsup = 0;
    o->live = 0;
    o->book = NULL;
    o->node = NULL;
}

void
order_decref(Order *o)
{
    if (--o->refs == 0) {
        order_clear(o);
        free(o);
    }
}

int
vec_grow(void **p, int *cap, int n, size_t size)
{
    if (n < *cap)
        return 0;
    int c = *cap ? *cap * 2 : 2;
    void *q = realloc(*p, (size_t)c * size);
    if (q == NULL) {
        PyErr_NoMemory();
        return -1;
    }
    *p = q;
    *cap = c;
    return 0;
}

/* a copy of s[0:n] in the arena; len -1 on failure (a MemoryError set) */
Span
arena_put(Order *o, const char *s, Py_ssize_t n)
{
    Span sp = {0, -1};
    if (n > 0x3fffffff)
        return sp;
    if (o->used + n > o->cap) {
        int32_t c = o->cap ? o->cap : 192;
        while (c < o->used + n)
            c *= 2;
        char *a = realloc(o->arena, (size_t)c);
        if (a == NULL) {
            PyErr_NoMemory();
            return sp;
        }
        o->arena = a;
        o->cap = c;
    }
    if (n)
        memcpy(o->arena + o->used, s, (size_t)n);
    sp.off = o->used;
    sp.len = (int32_t)n;
    o->used += (int32_t)n;
    return sp;
}

int
span_eq(Order *o, Span a, const char *s, Py_ssize_t n, int present)
{
    if (!present)
        return a.len < 0;
    return a.len == n && memcmp(SPAN_PTR(o, a), s, (size_t)n) == 0;
}

/* field = s[0:n] (None: not present); the arena grows only when the value changes */
int
span_set(Order *o, Span *field, const char *s, Py_ssize_t n, int present)
{
    if (!present) {
        *field = (Span)NONE_SPAN;
        return 0;
    }
    if (span_eq(o, *field, s, n, 1))
        return 0;
    Span sp = arena_put(o, s, n);
    if (sp.len < 0)
        return -1;
    *field = sp;
    return 0;
}

PyObject *
span_bytes(Order *o, Span s)
{
    if (s.len < 0)
        Py_RETURN_NONE;
    return PyBytes_FromStringAndSize(SPAN_PTR(o, s), s.len);
}

/* --- the byte-keyed tables ------------------------------------------------------------------- */

uint64_t
hash_bytes(const char *k, Py_ssize_t n)
{
    uint64_t h = 1469598103934665603ULL ^ (uint64_t)n;
    for (Py_ssize_t i = 0; i < n; i++) {
        h ^= (unsigned char)k[i];
        h *= 1099511628211ULL;
    }
    h ^= h >> 29;
    h *= 0xbf58476d1ce4e5b9ULL;
    h ^= h >> 32;
    return h;
}

static int
key_is(const Slot *s, uint64_t h, const char *k, Py_ssize_t n)
{
    return s->h == h && s->len == n && memcmp(s->o->arena + s->off, k, (size_t)n) == 0;
}

Order *
tab_get(Table *t, const char *k, Py_ssize_t n)
{
    if (t->n == 0)
        return NULL;
    uint64_t h = hash_bytes(k, n);
    for (size_t i = h & t->mask;; i = (i + 1) & t->mask) {
        Slot *s = &t->s[i];
        if (s->o == NULL)
            return NULL;
        if (key_is(s, h, k, n))
            return s->o;
    }
}

static int
tab_resize(Table *t, size_t cap)
{
    Slot *old = t->s;
    size_t oldcap = old ? t->mask + 1 : 0;
    Slot *s = calloc(cap, sizeof(Slot));
    if (s == NULL) {
        PyErr_NoMemory();
        return -1;
    }
    t->s = s;
    t->mask = cap - 1;
    for (size_t i = 0; i < oldcap; i++) {
        if (old[i].o == NULL)
            continue;
        size_t j = old[i].h & t->mask;
        while (s[j].o != NULL)
            j = (j + 1) & t->mask;
        s[j] = old[i];
    }
    free(old);
    return 0;
}

/* key (in o's arena) -> o, replacing what it named */
int
tab_put(Table *t, Order *o, Span key)
{
    if (t->s == NULL || (t->n + 1) * 2 > t->mask + 1) {
        if (tab_resize(t, t->s == NULL ? 64 : (t->mask + 1) * 2) < 0)
            return -1;
    }
    const char *k = o->arena + key.off;
    uint64_t h = hash_bytes(k, key.len);
    size_t i = h & t->mask;
    for (;; i = (i + 1) & t->mask) {
        Slot *s = &t->s[i];
        if (s->o == NULL)
            break;
        if (key_is(s, h, k, key.len)) {
            s->o = o;
            s->off = key.off;
            return 0;
        }
    }
    t->s[i] = (Slot){h, o, key.off, key.len};
    t->n++;
    return 0;
}

/* deletes the key if it names o (``if by_cl.get(cl) is chain: del by_cl[cl]``) */
void
tab_del_if(Table *t, const char *k, Py_ssize_t n, Order *o)
{
    if (t->n == 0)
        return;
    uint64_t h = hash_bytes(k, n);
    size_t i = h & t->mask;
    for (;; i = (i + 1) & t->mask) {
        Slot *s = &t->s[i];
        if (s->o == NULL)
            return;
        if (key_is(s, h, k, n))
            break;
    }
    if (t->s[i].o != o)
        return;
    /* shift the rest of the run back over the hole */
    size_t j = i;
    for (;;) {
        t->s[i].o = NULL;
        for (;;) {
            j = (j + 1) & t->mask;
            if (t->s[j].o == NULL) {
                t->n--;
                return;
            }
            size_t home = t->s[j].h & t->mask;
            /* j's entry may move to i unless its home lies cyclically in (i, j] */
            if (i <= j ? (home <= i || home > j) : (home <= i && home > j))
                break;
        }
        t->s[i] = t->s[j];
        i = j;
    }
}

void
tab_free(Table *t)
{
    free(t->s);
    t->s = NULL;
    t->mask = t->n = 0;
}

/* --- the (sender, MsgSeqNum) table ------------------------------------------------------------ */

static uint64_t
mix(uint64_t x)
{
    x ^= x >> 33;
    x *= 0xff51afd7ed558ccdULL;
    x ^= x >> 33;
    return x;
}

SeqSlot *
seq_get(SeqTable *t, uint64_t key)
{
    if (t->n == 0)
        return NULL;
    for (size_t i = mix(key) & t->mask;; i = (i + 1) & t->mask) {
        SeqSlot *s = &t->s[i];
        if (s->o == NULL)
            return NULL;
        if (s->key == key)
            return s;
    }
}

static int
seq_resize(SeqTable *t, size_t cap)
{
    SeqSlot *old = t->s;
    size_t oldcap = old ? t->mask + 1 : 0;
    SeqSlot *s = calloc(cap, sizeof(SeqSlot));
    if (s == NULL) {
        PyErr_NoMemory();
        return -1;
    }
    t->s = s;
    t->mask = cap - 1;
    for (size_t i = 0; i < oldcap; i++) {
        if (old[i].o == NULL)
            continue;
        size_t j = mix(old[i].key) & t->mask;
        while (s[j].o != NULL)
            j = (j + 1) & t->mask;
        s[j] = old[i];
    }
    free(old);
    return 0;
}

int
seq_put(SeqTable *t, uint64_t key, Order *o, long long n)
{
    if (t->s == NULL || (t->n + 1) * 2 > t->mask + 1) {
        if (seq_resize(t, t->s == NULL ? 64 : (t->mask + 1) * 2) < 0)
            return -1;
    }
    size_t i = mix(key) & t->mask;
    for (;; i = (i + 1) & t->mask) {
        SeqSlot *s = &t->s[i];
        if (s->o == NULL)
            break;
        if (s->key == key) {
            s->o = o;
            s->n = n;
            return 0;
        }
    }
    t->s[i] = (SeqSlot){key, o, n};
    t->n++;
    return 0;
}

/* 1 when the key was there */
int
seq_del(SeqTable *t, uint64_t key)
{
    if (t->n == 0)
        return 0;
    size_t i = mix(key) & t->mask;
    for (;; i = (i + 1) & t->mask) {
        if (t->s[i].o == NULL)
            return 0;
        if (t->s[i].key == key)
            break;
    }
    size_t j = i;
    for (;;) {
        t->s[i].o = NULL;
        for (;;) {
            j = (j + 1) & t->mask;
            if (t->s[j].o == NULL) {
                t->n--;
                return 1;
            }
            size_t home = mix(t->s[j].key) & t->mask;
            if (i <= j ? (home <= i || home > j) : (home <= i && home > j))
                break;
        }
        t->s[i] = t->s[j];
        i = j;
    }
}

void
seq_free(SeqTable *t)
{
    free(t->s);
    t->s = NULL;
    t->mask = t->n = 0;
}
