/* One session's orders, as gateway/audit/chains.py's OrderBook checks them, for the messages
 * that need no finding (cscan.h: the rule). Each handler reads first -- every condition under
 * which chains.py would make a finding or take a rare branch declines the message, changing
 * nothing -- then writes, in the order chains.py does. The comments name the chains.py code
 * each part stands for.
 *
 * Keys: a key (ClOrdID, OrderID, ExecID, a request's sender and MsgSeqNum) is either in the
 * C's index or in the Python book's, never both: the C adds a key only when Python's index
 * lacks it, and Python reads a message only after Book.claim handed it the orders the message
 * names. Book also holds the closed queue (waiting.ClosedQueue) for its orders and the Python
 * book's chains alike, so they leave in the order they closed.
 */
#include "cscan.h"

#include <stdlib.h>

typedef struct { const char *p; Py_ssize_t n; int has; } V;

static V
val(Msg *m, int f)
{
    V v = {NULL, 0, 0};
    if (HAS(m, f)) {
        v.p = PTR(m, f);
        v.n = LEN(m, f);
        v.has = 1;
    }
    return v;
}

static V
sval(Order *o, Span s)
{
    V v = {NULL, 0, 0};
    if (s.len >= 0) {
        v.p = SPAN_PTR(o, s);
        v.n = s.len;
        v.has = 1;
    }
    return v;
}

#define VEQ(v, lit) ((v).has && (v).n == (Py_ssize_t)(sizeof(lit) - 1) \
                     && memcmp((v).p, lit, sizeof(lit) - 1) == 0)

/* bytes | None equality */
static int
v_eq(V a, V b)
{
    if (!a.has || !b.has)
        return a.has == b.has;
    return a.n == b.n && memcmp(a.p, b.p, (size_t)a.n) == 0;
}

static int
v_in(const StrSet *s, V v)
{
    return v.has && set_has(s, v.p, v.n);
}

static int
v_dec(V v, Dec *d)
{
    return v.has && dec_parse(v.p, v.n, d);
}

/* 1: the Python dict (non-empty) has the key; -1: an error */
static int
py_has(PyObject *dict, V k)
{
    if (!k.has || PyDict_GET_SIZE(dict) == 0)
        return 0;
    PyObject *key = PyBytes_FromStringAndSize(k.p, k.n);
    if (key == NULL)
        return -1;
    int r = PyDict_Contains(dict, key);
    Py_DECREF(key);
    return r;
}

static PyObject *
seq_pykey(Book *b, int sender, long long seq)
{
    return Py_BuildValue("(OL)", b->senders[sender], seq);
}

/* Python's by_seq holds (sender, seq) */
static int
py_has_seq(Book *b, int sender, long long seq)
{
    if (PyDict_GET_SIZE(b->by_seq) == 0)
        return 0;
    PyObject *key = seq_pykey(b, sender, seq);
    if (key == NULL)
        return -1;
    int r = PyDict_Contains(b->by_seq, key);
    Py_DECREF(key);
    return r;
}

/* ``chain = index.get(value)``: the C's order, or DECLINE when the Python book has one */
static int
find(Table *t, PyObject *py, V k, Order **o)
{
    *o = NULL;
    if (!k.has)
        return OK;
    *o = tab_get(t, k.p, k.n);
    if (*o != NULL)
        return OK;
    int r = py_has(py, k);
    return r < 0 ? ERROR : r ? DECLINE : OK;
}

/* the sender's index in b->senders, added if new; -1 when there are too many */
int
book_sender(Book *b, const char *s, Py_ssize_t n)
{
    for (int i = 0; i < b->nsenders; i++) {
        PyObject *x = b->senders[i];
        if (PyBytes_GET_SIZE(x) == n && memcmp(PyBytes_AS_STRING(x), s, (size_t)n) == 0)
            return i;
    }
    if (b->nsenders == SENDERS)
        return -1;
    PyObject *x = PyBytes_FromStringAndSize(s, n);
    if (x == NULL)
        return -2;
    int i = b->nsenders++;
    b->senders[i] = x;
    b->expect_known[i] = b->expect_dirty[i] = 0;
    if (b->run == b->engine->run && book_load_expected(b, i) < 0)
        return -2;
    return i;
}

/* b->expect[i] from the session's ``expected`` dict */
int
book_load_expected(Book *b, int i)
{
    b->expect_known[i] = 0;
    b->expect_dirty[i] = 0;
    PyObject *v = PyDict_GetItemWithError(b->expected, b->senders[i]);
    if (v == NULL)
        return PyErr_Occurred() ? -1 : 0;
    if (!PyLong_CheckExact(v))
        return 0;
    int overflow;
    long long x = PyLong_AsLongLongAndOverflow(v, &overflow);
    if (x == -1 && PyErr_Occurred())
        return -1;
    if (!overflow && x > 0 && x < MAX_SEQ) {
        b->expect[i] = x;
        b->expect_known[i] = 1;
    }
    return 0;
}

/* --- Clock.seconds (sources.py) ------------------------------------------------------------ */

static int
digits(const char *s, int n, int *out)
{
    int v = 0;
    for (int i = 0; i < n; i++) {
        if (s[i] < '0' || s[i] > '9')
            return 0;
        v = v * 10 + (s[i] - '0');
    }
    *out = v;
    return 1;
}

static long long
days_from_civil(long long y, unsigned m, unsigned d)
{
    y -= m <= 2;
    long long era = (y >= 0 ? y : y - 399) / 400;
    unsigned yoe = (unsigned)(y - era * 400);
    unsigned doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1;
    unsigned doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    return era * 146097 + (long long)doe - 719468;
}

/* 1 and the seconds; 0 where Clock.seconds gives None; -1 where the C cannot tell (a form
 * int() or float() might read otherwise) */
int
book_stamp_seconds(const char *s, Py_ssize_t n, double *out)
{
    if (n < 17)
        return 0;
    int y, mo, d, h, mi;
    if (!digits(s, 4, &y) || !digits(s + 4, 2, &mo) || !digits(s + 6, 2, &d)
            || !digits(s + 9, 2, &h) || !digits(s + 12, 2, &mi))
        return -1;
    static const int dim[] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
    if (y < 1 || mo < 1 || mo > 12 || h > 23 || mi > 59 || d < 1)
        return 0;
    int leap = (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
    if (d > dim[mo - 1] + (mo == 2 && leap))
        return 0;
    /* float(stamp[15:]): only digits[.digits] here */
    Py_ssize_t k = n - 15;
    if (k > 40)
        return -1;
    char buf[48];
    int dot = 0, dig = 0;
    for (Py_ssize_t i = 0; i < k; i++) {
        char c = s[15 + i];
        if (c >= '0' && c <= '9')
            dig++;
        else if (c == '.' && !dot && dig)
            dot = 1;
        else
            return -1;
        buf[i] = c;
    }
    if (!dig || buf[k - 1] == '.')
        return -1;
    buf[k] = '\0';
    double base = (double)(days_from_civil(y, (unsigned)mo, (unsigned)d) * 86400
                           + h * 3600 + mi * 60);
    *out = base + strtod(buf, NULL);
    return 1;
}

/* --- the closed queue ------------------------------------------------------------------------ */

Node *
queue_append(Book *b)
{
    Node *nd = calloc(1, sizeof(Node));
    if (nd == NULL) {
        PyErr_NoMemory();
        return NULL;
    }
    nd->prev = b->tail;
    if (b->tail)
        b->tail->next = nd;
    else
        b->head = nd;
    b->tail = nd;
    b->queued++;
    return nd;
}

void
queue_unlink(Book *b, Node *nd)
{
    if (nd->prev)
        nd->prev->next = nd->next;
    else
        b->head = nd->next;
    if (nd->next)
        nd->next->prev = nd->prev;
    else
        b->tail = nd->prev;
    b->queued--;
}

/* _maybe_close */
static int
maybe_close(Book *b, Order *o)
{
    const Rules *R = &b->engine->rules;
    V st = sval(o, o->status);
    if (o->closed || o->npending || !(v_in(&R->terminal, st) || (!st.has && !o->has_new)))
        return 0;
    Node *nd = queue_append(b);
    if (nd == NULL)
        return -1;
    nd->o = o;
    o->node = nd;
    o->closed = 1;
    o->closed_at = b->now;
    b->d_open--;
    b->d_closed++;
    return 0;
}

/* --- requests -------------------------------------------------------------------------------- */

/* _request: the request waits for its answer (pending, by_seq, the deadlines) */
static int
add_request(Book *b, Order *o, Msg *m, char kind, Span cl, long long seq, int sender,
            double now)
{
    if (vec_grow((void **)&o->pending, &o->cappending, o->npending, sizeof(Req)) < 0)
        return -1;
    long long n = engine_next(b->engine->counter);
    if (n < 0)
        return -1;
    Req *q = &o->pending[o->npending];
    q->kind = kind;
    q->cl = cl;
    q->stamp = o->last_stamp;
    q->seq = seq;
    q->sender = sender;
    q->origin = m->origin;
    q->line = m->line;
    q->at = now + b->engine->rules.answer_timeout;
    q->n = n;
    o->npending++;
    if (seq_put(&b->seq, SEQ_KEY(sender, seq), o, n) < 0)
        return -1;
    if (engine_push_due(b->engine, q->at, n, o) < 0)
        return -1;
    if (o->closed) {  /* a late request on a closed order: keep it open */
        queue_unlink(b, o->node);
        free(o->node);
        o->node = NULL;
        o->closed = 0;
    }
    return 0;
}

/* _answer */
static int
answer(Book *b, Order *o, int i)
{
    Req *q = &o->pending[i];
    if (!seq_del(&b->seq, SEQ_KEY(q->sender, q->seq)) && PyDict_GET_SIZE(b->by_seq)) {
        PyObject *key = seq_pykey(b, q->sender, q->seq);
        if (key == NULL)
            return -1;
        int r = PyDict_Contains(b->by_seq, key);
        if (r > 0)
            r = PyDict_DelItem(b->by_seq, key);
        Py_DECREF(key);
        if (r < 0)
            return -1;
    }
    memmove(o->pending + i, o->pending + i + 1, (size_t)(o->npending - i - 1) * sizeof(Req));
    o->npending--;
    return 0;
}

static Order *
create(Book *b, Msg *m)
{
    Order *o = order_new();
    if (o == NULL)
        return NULL;
    long long number = engine_next(b->engine->numbers);
    if (number < 0) {
        order_decref(o);
        return NULL;
    }
    o->number = number;
    o->book = b;
    o->first_stamp = o->last_stamp = arena_put(o, m->stamp, m->stamplen);
    if (o->first_stamp.len < 0) {
        order_decref(o);
        return NULL;
    }
    b->orders++;
    b->d_orders++;
    b->d_open++;
    return o;
}

static int
add_cl(Book *b, Order *o, V cl, Span *out)
{
    Span sp = arena_put(o, cl.p, cl.n);
    if (sp.len < 0 || vec_grow((void **)&o->cls, &o->capcls, o->ncls, sizeof(Span)) < 0)
        return -1;
    o->cls[o->ncls++] = sp;
    if (out)
        *out = sp;
    return tab_put(&b->cl, o, sp);
}

static int
request_now(Book *b, Msg *m, double *now)
{
    double secs;
    int r = book_stamp_seconds(m->stamp, m->stamplen, &secs);
    if (r < 0)
        return DECLINE;
    *now = (r == 1 && secs != 0.0) ? secs : b->now;  /* seconds(stamp) or book.now */
    return OK;
}

/* OrderBook.new_order */
int
book_new_order(Book *b, Msg *m, long long seq, int sender, double unused)
{
    V cl = val(m, F_CL);
    if (!cl.has || tab_get(&b->cl, cl.p, cl.n))
        return DECLINE;
    int r = py_has(b->by_cl, cl);
    if (r)
        return r < 0 ? ERROR : DECLINE;
    double now;
    if (request_now(b, m, &now) != OK || seq >= MAX_SEQ)
        return DECLINE;
    r = py_has_seq(b, sender, seq);
    if (r)
        return r < 0 ? ERROR : DECLINE;
    /* the writes */
    b->now = now;
    b->now_dirty = 1;
    Order *o = create(b, m);
    if (o == NULL)
        return ERROR;
    Span sp;
    if (add_cl(b, o, cl, &sp) < 0)
        goto error;
    o->has_new = 1;
    if (span_set(o, &o->qty, PTR(m, F_QTY), LEN(m, F_QTY), HAS(m, F_QTY)) < 0
            || span_set(o, &o->price, PTR(m, F_PRICE), LEN(m, F_PRICE), HAS(m, F_PRICE)) < 0
            || span_set(o, &o->side, PTR(m, F_SIDE), LEN(m, F_SIDE), HAS(m, F_SIDE)) < 0
            || span_set(o, &o->symbol, PTR(m, F_SYMBOL), LEN(m, F_SYMBOL), HAS(m, F_SYMBOL)) < 0
            || add_request(b, o, m, 'D', sp, seq, sender, now) < 0)
        goto error;
    return OK;
error:
    return ERROR;  /* the order stays indexed (the audit stops with the error) */
}

/* OrderBook.cancel (F and G) */
int
book_cancel(Book *b, Msg *m, long long seq, int sender, double unused)
{
    V cl = val(m, F_CL), orig = val(m, F_ORIG), oid = val(m, F_OID);
    if (!cl.has || IS(m, F_POSS_DUP, "Y") || seq >= MAX_SEQ)
        return DECLINE;
    Order *o = NULL;
    int r = find(&b->cl, b->by_cl, orig, &o);
    if (r == OK && o == NULL)
        r = find(&b->oid, b->by_oid, oid, &o);
    if (r != OK)
        return r;
    if (o == NULL || tab_get(&b->cl, cl.p, cl.n))
        return DECLINE;
    r = py_has(b->by_cl, cl);
    if (r)
        return r < 0 ? ERROR : DECLINE;
    double now;
    if (request_now(b, m, &now) != OK)
        return DECLINE;
    r = py_has_seq(b, sender, seq);
    if (r)
        return r < 0 ? ERROR : DECLINE;
    b->now = now;
    b->now_dirty = 1;
    Span sp;
    if (add_cl(b, o, cl, &sp) < 0
            || span_set(o, &o->last_stamp, m->stamp, m->stamplen, 1) < 0)
        return ERROR;
    char kind = PTR(m, F_MSG_TYPE)[0];
    return add_request(b, o, m, kind, sp, seq, sender, now) < 0 ? ERROR : OK;
}

/* OrderBook.cancel_reject */
int
book_cancel_reject(Book *b, Msg *m)
{
    V cl = val(m, F_CL), orig = val(m, F_ORIG), oid = val(m, F_OID);
    Order *o = NULL;
    int r = find(&b->cl, b->by_cl, cl, &o);
    if (r == OK && o == NULL)
        r = find(&b->cl, b->by_cl, orig, &o);
    if (r == OK && o == NULL)
        r = find(&b->oid, b->by_oid, oid, &o);
    if (r != OK)
        return r;
    if (o == NULL)
        return DECLINE;
    if (span_set(o, &o->last_stamp, m->stamp, m->stamplen, 1) < 0)
        return ERROR;
    o->reports++;
    if (HAS(m, F_TEXT) && span_set(o, &o->last_text, PTR(m, F_TEXT), LEN(m, F_TEXT), 1) < 0)
        return ERROR;
    for (int i = 0; i < o->npending;) {
        Req *q = &o->pending[i];
        if (q->kind != 'D' && span_eq(o, q->cl, cl.p, cl.n, cl.has)) {
            if (answer(b, o, i) < 0)
                return ERROR;
        }
        else
            i++;
    }
    return maybe_close(b, o) < 0 ? ERROR : OK;
}

/* --- ExecutionReport ------------------------------------------------------------------------- */

/* _check_leaves, reading only: OK, or DECLINE for a finding or what the C cannot tell */
static int
check_leaves(const Rules *R, V st, V lv, V cum_t, V qty, Dec cum)
{
    int terminal = v_in(&R->terminal, st), live = v_in(&R->live, st);
    Dec d, leaves, q, c, diff;
    int cmp;
    if (terminal) {
        if (VEQ(lv, "0"))
            return OK;
    }
    else if (VEQ(cum_t, "0") && v_eq(lv, qty) && live)
        return v_dec(lv, &d) ? OK : DECLINE;
    if (!v_dec(lv, &leaves))
        return DECLINE;
    if (terminal)
        return dec_sign(leaves) == 0 ? OK : DECLINE;
    if (!live || !qty.has)
        return OK;
    if (!v_dec(qty, &q))
        return DECLINE;
    if (cum_t.has) {
        if (!v_dec(cum_t, &c))
            return DECLINE;
    }
    else
        c = cum;
    if (!dec_sub(q, c, &diff) || !dec_cmp(leaves, diff, &cmp) || cmp != 0)
        return DECLINE;
    return OK;
}

/* _avg, reading only */
static int
check_avg(V avg, Dec cum, Dec notional)
{
    Dec a, prod, diff, tol, limit;
    int cmp;
    if (!v_dec(avg, &a) || !dec_mul(a, cum, &prod) || !dec_sub(prod, notional, &diff))
        return DECLINE;
    if (diff.c < 0)
        diff.c = -diff.c;
    const char *dot = memchr(avg.p, '.', (size_t)avg.n);
    int places = dot ? (int)(avg.n - (dot - avg.p) - 1) : 0;
    tol.c = 5;
    tol.e = -(places + 1);
    if (!dec_mul(tol, cum, &limit) || !dec_cmp(diff, limit, &cmp) || cmp > 0)
        return DECLINE;
    return OK;
}

static int
in_spans(Order *o, Span *s, int n, V v)
{
    for (int i = 0; i < n; i++)
        if (span_eq(o, s[i], v.p, v.n, 1))
            return 1;
    return 0;
}

/* a span of o holding v: `reuse` when it holds it already */
static int
keep(Order *o, Span reuse, V v, Span *out)
{
    if (!v.has) {
        *out = (Span)NONE_SPAN;
        return 0;
    }
    if (span_eq(o, reuse, v.p, v.n, 1)) {
        *out = reuse;
        return 0;
    }
    *out = arena_put(o, v.p, v.n);
    return out->len < 0 ? -1 : 0;
}

/* _replaced: the ClOrdIDs before cl are retired */
static int
replaced(Order *o, V cl, Msg *m)
{
    int k = 0;
    for (; k < o->ncls && !span_eq(o, o->cls[k], cl.p, cl.n, 1); k++) {
        if (in_spans(o, o->sup, o->nsup, sval(o, o->cls[k])))
            continue;
        if (vec_grow((void **)&o->sup, &o->capsup, o->nsup, sizeof(Span)) < 0)
            return -1;
        o->sup[o->nsup++] = o->cls[k];
    }
    o->has_sup = 1;
    if (k < o->ncls) {  /* the chain now reads up to the new ClOrdID */
        Span s = o->cls[k];
        memmove(o->cls + k, o->cls + k + 1, (size_t)(o->ncls - k - 1) * sizeof(Span));
        o->cls[o->ncls - 1] = s;
    }
    if (HAS(m, F_PRICE))
        return span_set(o, &o->price, PTR(m, F_PRICE), LEN(m, F_PRICE), 1);
    return 0;
}

#define MAX_PENDING 32

/* OrderBook.report */
int
book_report(Book *b, Msg *m)
{
    const Rules *R = &b->engine->rules;
    int r;
    if (IS(m, F_POSS_DUP, "Y"))
        return DECLINE;
    V cl = val(m, F_CL), oid = val(m, F_OID), orig = val(m, F_ORIG);
    Order *o = NULL;
    r = find(&b->oid, b->by_oid, oid, &o);
    if (r == OK && o == NULL)
        r = find(&b->cl, b->by_cl, cl, &o);
    if (r == OK && o == NULL)
        r = find(&b->cl, b->by_cl, orig, &o);
    if (r != OK)
        return r;
    if (o == NULL)
        return DECLINE;  /* _adopt */
    V et = val(m, F_EXEC_TYPE), trans = val(m, F_EXEC_TRANS), eid = val(m, F_EXEC_ID);
    V st = val(m, F_STATUS), text = val(m, F_TEXT), qty_m = val(m, F_QTY);
    if (trans.has && !VEQ(trans, "0"))
        return DECLINE;  /* FIX 4.2's cancels, corrections and status */
    if (VEQ(et, "G") || VEQ(et, "H"))
        return DECLINE;  /* _correction */
    int is_i = VEQ(et, "I");
    if (eid.has && !is_i) {
        if (tab_get(&b->exec, eid.p, eid.n))
            return DECLINE;
        r = py_has(b->exec_ids, eid);
        if (r)
            return r < 0 ? ERROR : DECLINE;
    }
    /* _index: a second OrderID stays Python's */
    int index = oid.has && !span_eq(o, o->order_id, oid.p, oid.n, 1);
    int index_oid = index && !VEQ(oid, "NONE");
    if (index_oid && o->order_id.len >= 0)
        return DECLINE;
    /* the requests it answers */
    if (o->npending > MAX_PENDING)
        return DECLINE;
    int answers[MAX_PENDING], left = 0;
    for (int i = 0; i < o->npending; i++) {
        Req *q = &o->pending[i];
        answers[i] = q->kind == 'D' || span_eq(o, q->cl, cl.p, cl.n, cl.has)
                     || (q->kind == 'F' && (VEQ(st, "4") || VEQ(et, "4")))
                     || (q->kind == 'G' && VEQ(et, "5"));
        left += !answers[i];
    }
    /* fills */
    Dec cum = o->cum, notional = o->notional, lq, lpx, prod;
    int filled = v_in(&R->trade, et) || v_in(&R->fix42_trades, et);
    if (filled) {
        if (!v_dec(val(m, F_LAST_QTY), &lq) || !v_dec(val(m, F_LAST_PX), &lpx)
                || dec_sign(lq) <= 0 || !dec_mul(lq, lpx, &prod) || !dec_add(cum, lq, &cum)
                || !dec_add(notional, prod, &notional))
            return DECLINE;
    }
    /* the status */
    int set_status = 0;
    V before = sval(o, o->status);
    if (st.has) {
        if (!v_in(&R->unchecked, et)) {
            const StrSet *fits = et.has ? map_get(&R->status_for_exec_type, et.p, et.n) : NULL;
            if (fits != NULL && !set_has(fits, st.p, st.n))
                return DECLINE;
            if (before.has) {
                const StrSet *allowed = map_get(&R->next_status, before.p, before.n);
                if (allowed != NULL && !set_has(allowed, st.p, st.n))
                    return DECLINE;
            }
            set_status = 1;
        }
        else if (!before.has)
            set_status = 1;
    }
    /* quantities */
    V qty = qty_m.has ? qty_m : sval(o, o->qty);
    V cum_t = val(m, F_CUM), lv = val(m, F_LEAVES), avg = val(m, F_AVG);
    int set_cum = cum_t.has && !span_eq(o, o->cum_text, cum_t.p, cum_t.n, 1);
    if (set_cum) {
        Dec c, q;
        int cmp;
        if (!v_dec(cum_t, &c) || !dec_cmp(c, cum, &cmp) || cmp != 0)
            return DECLINE;
        if (filled && qty.has && (!v_dec(qty, &q) || !dec_cmp(c, q, &cmp) || cmp > 0))
            return DECLINE;
    }
    int set_lk = 0;
    if (lv.has && st.has && !is_i) {
        V key[4] = {qty, cum_t, lv, st};
        set_lk = !o->has_lk;
        for (int i = 0; i < 4 && !set_lk; i++)
            set_lk = !v_eq(sval(o, o->lk[i]), key[i]);
        if (set_lk && check_leaves(R, st, lv, cum_t, qty, cum) != OK)
            return DECLINE;
    }
    int set_avg = avg.has && (filled || !span_eq(o, o->avg_text, avg.p, avg.n, 1));
    if (set_avg && dec_sign(cum) > 0 && check_avg(avg, cum, notional) != OK)
        return DECLINE;
    int add_cl_id = 0, is_replace = 0;
    if (cl.has) {
        if (o->has_sup && in_spans(o, o->sup, o->nsup, cl))
            return DECLINE;  /* stale ClOrdID */
        if (!tab_get(&b->cl, cl.p, cl.n)) {
            r = py_has(b->by_cl, cl);
            if (r < 0)
                return ERROR;
            add_cl_id = !r;
        }
        is_replace = VEQ(et, "5");
    }
    int close = v_in(&R->terminal, st) && left == 0 && !o->closed;

    /* the writes, in chains.py's order */
    if (index) {
        if (index_oid) {
            if (span_set(o, &o->order_id, oid.p, oid.n, 1) < 0
                    || tab_put(&b->oid, o, o->order_id) < 0)
                return ERROR;
        }
        if (HAS(m, F_SECONDARY) && span_set(o, &o->secondary_id, PTR(m, F_SECONDARY),
                                            LEN(m, F_SECONDARY), 1) < 0)
            return ERROR;
    }
    if (span_set(o, &o->last_stamp, m->stamp, m->stamplen, 1) < 0)
        return ERROR;
    Span eid_span = NONE_SPAN;
    if (eid.has && !is_i) {
        eid_span = arena_put(o, eid.p, eid.n);
        if (eid_span.len < 0 || tab_put(&b->exec, o, eid_span) < 0
                || vec_grow((void **)&o->execs, &o->capexecs, o->nexecs, sizeof(Span)) < 0)
            return ERROR;
        o->execs[o->nexecs++] = eid_span;
    }
    o->reports++;
    if (text.has && span_set(o, &o->last_text, text.p, text.n, 1) < 0)
        return ERROR;
    if (qty_m.has && span_set(o, &o->qty, qty_m.p, qty_m.n, 1) < 0)
        return ERROR;
    for (int i = 0, j = 0, np = o->npending; j < np; j++) {
        if (answers[j]) {
            if (answer(b, o, i) < 0)
                return ERROR;
        }
        else
            i++;
    }
    if (filled) {
        if (eid.has) {
            Fill f = {eid_span, NONE_SPAN, NONE_SPAN};
            f.lq = arena_put(o, PTR(m, F_LAST_QTY), LEN(m, F_LAST_QTY));
            f.lpx = arena_put(o, PTR(m, F_LAST_PX), LEN(m, F_LAST_PX));
            if (f.lq.len < 0 || f.lpx.len < 0)
                return ERROR;
            int k = 0;
            while (k < o->nfills && !span_eq(o, o->fills[k].exec_id, eid.p, eid.n, 1))
                k++;
            if (k == o->nfills) {
                if (vec_grow((void **)&o->fills, &o->capfills, o->nfills, sizeof(Fill)) < 0)
                    return ERROR;
                o->nfills++;
            }
            o->fills[k] = f;
        }
        o->cum = cum;
        o->notional = notional;
        o->n_fills++;
        b->d_fills++;
    }
    if (set_status && span_set(o, &o->status, st.p, st.n, 1) < 0)
        return ERROR;
    if (set_cum && span_set(o, &o->cum_text, cum_t.p, cum_t.n, 1) < 0)
        return ERROR;
    if (set_lk) {
        if (keep(o, o->qty, qty, &o->lk[0]) < 0 || keep(o, o->cum_text, cum_t, &o->lk[1]) < 0
                || keep(o, o->lk[2], lv, &o->lk[2]) < 0
                || keep(o, o->status, st, &o->lk[3]) < 0)
            return ERROR;
        o->has_lk = 1;
    }
    if (set_avg && span_set(o, &o->avg_text, avg.p, avg.n, 1) < 0)
        return ERROR;
    if (add_cl_id && add_cl(b, o, cl, NULL) < 0)
        return ERROR;
    if (is_replace && replaced(o, cl, m) < 0)
        return ERROR;
    if (close && maybe_close(b, o) < 0)
        return ERROR;
    return OK;
}
