/* The audit's compiled fast path (module gateway.audit._cscan): what its files share.
 *
 *   ../_cscan.c  the module: the field scanner, the file-log reader (Batch)
 *   dec.c        FIX decimals as exact (coefficient, exponent) pairs, as Python's Decimal
 *   store.c      an order's own storage (Order), the hash indexes
 *   book.c       one session's orders and their checks (Book): chains.py's happy path
 *   output.c     an order as chains.py hands it on: Chain.summary()'s JSON, or the state
 *                OrderBook.restore() makes a Chain of
 *   engine.c     the loop over the messages (Engine): sessions, sequence numbers, deadlines
 *
 * The rule everything here keeps: the C checks a message only when it can tell that
 * gateway/audit/checker.py and chains.py would find nothing in it and take no rare branch; for
 * any other message it changes nothing and hands the message to Python ("declines"), after
 * handing over the orders the message may be about (Book.claim). So the findings are Python's,
 * made by the same code as without the C; tests/audit/test_fastpath.py compares the two.
 */
#ifndef FIXGW_CSCAN_H
#define FIXGW_CSCAN_H

#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <stdint.h>
#include <string.h>

#define MAX_WANTED 64

/* --- the scanner (_cscan.c) ------------------------------------------------------------------ */

extern int n_wanted;
int wanted_index(long long tag);
/* the first occurrence of each wanted field of a clean message (start -1: absent); 0 when the
 * message is not clean (see _cscan.c) */
int scan_clean(const char *s, Py_ssize_t n, Py_ssize_t *start, Py_ssize_t *len);

/* --- the reader's batches (_cscan.c) ----------------------------------------------------------- */

typedef struct {
    PyObject_HEAD
    PyObject *buf;       /* the reader's bytearray (valid until it reads the next chunk) */
    PyObject *origin;
    Py_ssize_t count, cap;
    Py_ssize_t *pos;     /* 4 a message: stamp start, stamp length, raw start, raw length */
    long long *line;
} Batch;

extern PyTypeObject BatchType;
PyObject *batch_record(Batch *b, Py_ssize_t i);

/* --- decimals (dec.c) ---------------------------------------------------------------------------- */

typedef __int128 i128;
typedef struct { i128 c; int e; } Dec;  /* c * 10**e, exactly; Decimal's coefficient and exponent */

int dec_parse(const char *s, Py_ssize_t n, Dec *out);
int dec_add(Dec a, Dec b, Dec *out);
int dec_sub(Dec a, Dec b, Dec *out);
int dec_mul(Dec a, Dec b, Dec *out);
int dec_cmp(Dec a, Dec b, int *out);
int dec_sign(Dec a);
PyObject *dec_text(Dec a);

/* --- an order's storage and the indexes (store.c) ---------------------------------------------- */

typedef struct { int32_t off, len; } Span;  /* bytes in an order's arena; len -1: None */
#define NONE_SPAN ((Span){0, -1})

typedef struct {
    char kind;             /* 'D', 'F', 'G' */
    Span cl, stamp;
    long long seq, line;
    int sender;            /* the index of its SenderCompID in the book's senders */
    PyObject *origin;      /* borrowed: the engine keeps every origin it met */
    double at;             /* its deadline */
    long long n;           /* its number among the deadlines (Deadlines.counter) */
} Req;

typedef struct { Span exec_id, lq, lpx; } Fill;

struct Book;
struct Node;

typedef struct Order {
    int refs;              /* its book while it keeps it, and each deadline entry */
    int live;              /* kept by the C (else handed to Python or let go) */
    struct Book *book;
    long long number;
    char *arena;
    int32_t used, cap;
    Span *cls;   int ncls, capcls;
    Span *execs; int nexecs, capexecs;
    Fill *fills; int nfills, capfills;
    Req *pending; int npending, cappending;
    Span *sup;   int nsup, capsup, has_sup;
    Span order_id, secondary_id, symbol, side, qty, price, status, cum_text, avg_text,
         last_text, first_stamp, last_stamp;
    int has_lk;
    Span lk[4];            /* leaves_key: OrderQty, CumQty, LeavesQty, OrdStatus */
    Dec cum, notional;
    int closed;
    double closed_at;
    struct Node *node;     /* in the closed queue */
    int n_fills, reports, has_new;
} Order;

Order *order_new(void);
void order_decref(Order *o);
void order_clear(Order *o);
Span arena_put(Order *o, const char *s, Py_ssize_t n);
int span_set(Order *o, Span *field, const char *s, Py_ssize_t n, int present);
int span_eq(Order *o, Span a, const char *s, Py_ssize_t n, int present);
#define SPAN_PTR(o, sp) ((o)->arena + (sp).off)
int vec_grow(void **p, int *cap, int n, size_t size);
PyObject *span_bytes(Order *o, Span s);

typedef struct { uint64_t h; Order *o; int32_t off, len; } Slot;
typedef struct { Slot *s; size_t mask, n; } Table;

uint64_t hash_bytes(const char *k, Py_ssize_t n);
Order *tab_get(Table *t, const char *k, Py_ssize_t n);
int tab_put(Table *t, Order *o, Span key);
void tab_del_if(Table *t, const char *k, Py_ssize_t n, Order *o);
void tab_free(Table *t);

typedef struct { uint64_t key; Order *o; long long n; } SeqSlot;  /* o NULL: empty */
typedef struct { SeqSlot *s; size_t mask, n; } SeqTable;

SeqSlot *seq_get(SeqTable *t, uint64_t key);
int seq_put(SeqTable *t, uint64_t key, Order *o, long long n);
int seq_del(SeqTable *t, uint64_t key);
void seq_free(SeqTable *t);
#define SEQ_KEY(sender, seq) (((uint64_t)(sender) << 56) | (uint64_t)(seq))
#define MAX_SEQ (1LL << 55)

/* --- the rules, from states.py and chains.py (engine.c) -------------------------------------- */

typedef struct { int n; char v[24][8]; unsigned char len[24]; } StrSet;
typedef struct { int n; char k[24][8]; unsigned char klen[24]; StrSet v[24]; } StrMap;

typedef struct {
    StrSet terminal, live, unchecked, fix42_trades, trade;
    StrMap next_status, status_for_exec_type;
    double answer_timeout, closed_window;
    long long max_closed, tick;
} Rules;

int set_has(const StrSet *s, const char *v, Py_ssize_t n);
const StrSet *map_get(const StrMap *m, const char *k, Py_ssize_t n);

/* --- the engine and its books (engine.c, book.c, output.c) ---------------------------------- */

#define SENDERS 8
#define MAX_TOUCHED 64

typedef struct Node {
    struct Node *prev, *next;
    Order *o;              /* an order of the C, or */
    PyObject *chain;       /* a Python Chain */
} Node;

typedef struct {
    double at;
    long long n;
    Order *o;
} Due;

typedef struct Engine Engine;

typedef struct Book {
    PyObject_HEAD
    Engine *engine;
    PyObject *pybook, *session, *by_cl, *by_oid, *exec_ids, *by_seq, *expected, *local,
             *session_json, *py_nodes;
    Table cl, oid, exec;
    SeqTable seq;
    Node *head, *tail;
    Py_ssize_t queued, orders;
    int nsenders;
    PyObject *senders[SENDERS];
    long long expect[SENDERS];
    unsigned char expect_known[SENDERS], expect_dirty[SENDERS];
    /* what a run() changed, written to the Python objects when it returns (engine.c) */
    long long run;
    double now;
    int now_dirty;
    long long d_orders, d_fills, d_open, d_closed, d_messages, d_incoming;
    char last_stamp[64];
    int last_stamp_len;
} Book;

typedef struct {
    PyObject *origin;
    char sender[48], target[48];
    int slen, tlen;
    int skip, incoming, sender_index;
    PyObject *session;
    Book *book;
} Entry;

#define ENTRIES 64

struct Engine {
    PyObject_HEAD
    PyObject *numbers, *counter, *skip, *on_summary, *until, *origins;
    Rules rules;
    Entry entries[ENTRIES];
    int nentries;
    Due *heap;
    size_t nheap, capheap;
    PyObject *batch;      /* the Batch being read */
    Py_ssize_t batch_i;
    Book *touched[MAX_TOUCHED];
    int ntouched;
    long long run, skipped;
    char *out;            /* JSON lines of orders let go, for on_summary */
    size_t outlen, outcap;
    long long out_orders, out_fills, out_open;
};

extern PyTypeObject EngineType, BookType;

/* the fields of a message (engine.c fills it; book.c reads it) */
typedef struct {
    const char *raw, *stamp;
    Py_ssize_t rawlen, stamplen;
    long long line;
    PyObject *origin;
    Py_ssize_t st[MAX_WANTED], ln[MAX_WANTED];
} Msg;

enum { F_MSG_TYPE, F_SEQ, F_POSS_DUP, F_SENDER, F_TARGET, F_CL, F_ORIG, F_OID, F_EXEC_ID,
       F_EXEC_TRANS, F_EXEC_TYPE, F_STATUS, F_CUM, F_LEAVES, F_AVG, F_LAST_PX, F_LAST_QTY,
       F_QTY, F_PRICE, F_SIDE, F_SYMBOL, F_SECONDARY, F_TEXT, F_REF_SEQ, F_BIZ_REF, N_F };
extern int field_at[N_F];  /* F_* -> index in the scanner's wanted fields */

#define HAS(m, f) ((m)->st[field_at[f]] >= 0)
#define PTR(m, f) ((m)->raw + (m)->st[field_at[f]])
#define LEN(m, f) ((m)->ln[field_at[f]])
#define IS(m, f, lit) (HAS(m, f) && LEN(m, f) == (Py_ssize_t)(sizeof(lit) - 1) \
                       && memcmp(PTR(m, f), lit, sizeof(lit) - 1) == 0)

enum { OK = 0, DECLINE = 1, SKIPPED = 2, ERROR = -1 };

/* engine.c */
int engine_fields(void);

/* book.c */
int book_report(Book *b, Msg *m);
int book_new_order(Book *b, Msg *m, long long seq, int sender, double now);
int book_cancel(Book *b, Msg *m, long long seq, int sender, double now);
int book_cancel_reject(Book *b, Msg *m);
int book_promote(Book *b, Order *o);
Node *queue_append(Book *b);
void queue_unlink(Book *b, Node *nd);
int book_sender(Book *b, const char *s, Py_ssize_t n);
int book_load_expected(Book *b, int i);
int book_stamp_seconds(const char *s, Py_ssize_t n, double *out);
int engine_push_due(Engine *e, double at, long long n, Order *o);
int engine_flush_summaries(Engine *e);
long long engine_next(PyObject *counter);

/* output.c */
int order_json(Engine *e, Book *b, Order *o);
PyObject *order_state(Book *b, Order *o, int with_keys);

#endif
