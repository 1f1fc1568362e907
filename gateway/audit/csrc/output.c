/* An order of the C as chains.py hands an order on:
 *
 * order_json  -- Chain.summary() as orjson.dumps writes it (report.Outputs spools it), for
 *                orders whose texts are plain ASCII (no quote, backslash or control byte):
 *                those JSON writes as they are; any other order is made a Chain and summed up
 *                by Python;
 * order_state -- the tuple OrderBook.restore() makes a Chain of (its field order is there).
 */
#include "cscan.h"

#include <stdlib.h>

static int
put(Engine *e, const char *s, size_t n)
{
    if (e->outlen + n > e->outcap) {
        size_t c = e->outcap ? e->outcap : 1 << 16;
        while (c < e->outlen + n)
            c *= 2;
        char *p = realloc(e->out, c);
        if (p == NULL) {
            PyErr_NoMemory();
            return -1;
        }
        e->out = p;
        e->outcap = c;
    }
    memcpy(e->out + e->outlen, s, n);
    e->outlen += n;
    return 0;
}

#define PUTS(lit) put(e, lit, sizeof(lit) - 1)

static int
plain(const char *s, Py_ssize_t n)
{
    for (Py_ssize_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        if (c < 0x20 || c > 0x7e || c == '"' || c == '\\')
            return 0;
    }
    return 1;
}

static int
put_text(Engine *e, Order *o, Span s)
{
    if (s.len < 0)
        return PUTS("null");
    if (PUTS("\"") < 0 || put(e, SPAN_PTR(o, s), (size_t)s.len) < 0)
        return -1;
    return PUTS("\"");
}

static int
put_int(Engine *e, long long v)
{
    char buf[32];
    int n = snprintf(buf, sizeof buf, "%lld", v);
    return put(e, buf, (size_t)n);
}

/* 1: the order's summary line is added to e->out; 0: its texts are not plain (Python writes
 * it); -1: an error */
int
order_json(Engine *e, Book *b, Order *o)
{
    Span texts[] = {o->order_id, o->secondary_id, o->symbol, o->side, o->qty, o->price,
                    o->status, o->cum_text, o->avg_text, o->first_stamp, o->last_stamp};
    for (size_t i = 0; i < sizeof texts / sizeof texts[0]; i++)
        if (texts[i].len > 0 && !plain(SPAN_PTR(o, texts[i]), texts[i].len))
            return 0;
    for (int i = 0; i < o->ncls; i++)
        if (!plain(SPAN_PTR(o, o->cls[i]), o->cls[i].len))
            return 0;
    size_t mark = e->outlen;
    const Rules *R = &e->rules;
    int done = (o->status.len >= 0 && set_has(&R->terminal, SPAN_PTR(o, o->status),
                                               o->status.len))
               || (o->status.len < 0 && !o->has_new);
    int ok = PUTS("{\"order\":") == 0 && put_int(e, o->number) == 0
        && PUTS(",\"session\":") == 0
        && put(e, PyBytes_AS_STRING(b->session_json),
               (size_t)PyBytes_GET_SIZE(b->session_json)) == 0
        && PUTS(",\"cl_ord_ids\":[") == 0;
    for (int i = 0; ok && i < o->ncls; i++)
        ok = (i == 0 || PUTS(",") == 0) && put_text(e, o, o->cls[i]) == 0;
    ok = ok && PUTS("],\"order_id\":") == 0 && put_text(e, o, o->order_id) == 0
        && PUTS(",\"secondary_order_id\":") == 0 && put_text(e, o, o->secondary_id) == 0
        && PUTS(",\"symbol\":") == 0 && put_text(e, o, o->symbol) == 0
        && PUTS(",\"side\":") == 0 && put_text(e, o, o->side) == 0
        && PUTS(",\"order_qty\":") == 0 && put_text(e, o, o->qty) == 0
        && PUTS(",\"price\":") == 0 && put_text(e, o, o->price) == 0
        && PUTS(",\"ord_status\":") == 0 && put_text(e, o, o->status) == 0
        && PUTS(",\"cum_qty\":") == 0 && put_text(e, o, o->cum_text) == 0
        && PUTS(",\"avg_px\":") == 0 && put_text(e, o, o->avg_text) == 0
        && PUTS(",\"fills\":") == 0 && put_int(e, o->n_fills) == 0
        && PUTS(",\"reports\":") == 0 && put_int(e, o->reports) == 0
        && PUTS(",\"first\":") == 0 && put_text(e, o, o->first_stamp) == 0
        && PUTS(",\"last\":") == 0 && put_text(e, o, o->last_stamp) == 0
        && (done ? PUTS(",\"open\":false") : PUTS(",\"open\":true")) == 0
        && PUTS(",\"adopted\":false,\"findings\":[]}\n") == 0;
    if (!ok) {
        e->outlen = mark;
        return -1;
    }
    e->out_orders++;
    e->out_fills += o->n_fills;
    e->out_open += !done;
    return 1;
}

/* --- the state OrderBook.restore() reads ----------------------------------------------------- */

static PyObject *
span_list(Order *o, Span *s, int n)
{
    PyObject *out = PyList_New(n);
    if (out == NULL)
        return NULL;
    for (int i = 0; i < n; i++) {
        PyObject *x = span_bytes(o, s[i]);
        if (x == NULL) {
            Py_DECREF(out);
            return NULL;
        }
        PyList_SET_ITEM(out, i, x);
    }
    return out;
}

static PyObject *
pending_list(Book *b, Order *o)
{
    PyObject *out = PyList_New(o->npending);
    if (out == NULL)
        return NULL;
    for (int i = 0; i < o->npending; i++) {
        Req *q = &o->pending[i];
        SeqSlot *slot = seq_get(&b->seq, SEQ_KEY(q->sender, q->seq));
        int keyed = slot != NULL && slot->o == o && slot->n == q->n;
        PyObject *x = Py_BuildValue("(y#NLONOLdLO)", &q->kind, (Py_ssize_t)1,
                                    span_bytes(o, q->cl), q->seq, b->senders[q->sender],
                                    span_bytes(o, q->stamp), q->origin, q->line, q->at, q->n,
                                    keyed ? Py_True : Py_False);
        if (x == NULL) {
            Py_DECREF(out);
            return NULL;
        }
        PyList_SET_ITEM(out, i, x);
    }
    return out;
}

static PyObject *
fill_list(Order *o)
{
    PyObject *out = PyList_New(o->nfills);
    if (out == NULL)
        return NULL;
    for (int i = 0; i < o->nfills; i++) {
        Fill *f = &o->fills[i];
        PyObject *x = Py_BuildValue("(NNN)", span_bytes(o, f->exec_id), span_bytes(o, f->lq),
                                    span_bytes(o, f->lpx));
        if (x == NULL) {
            Py_DECREF(out);
            return NULL;
        }
        PyList_SET_ITEM(out, i, x);
    }
    return out;
}

/* the keys of the C's indexes that name o */
static PyObject *
cl_keys(Book *b, Order *o)
{
    PyObject *out = PyList_New(0);
    for (int i = 0; out != NULL && i < o->ncls; i++) {
        Span s = o->cls[i];
        if (tab_get(&b->cl, SPAN_PTR(o, s), s.len) != o)
            continue;
        PyObject *x = span_bytes(o, s);
        if (x == NULL || PyList_Append(out, x) < 0) {
            Py_XDECREF(x);
            Py_CLEAR(out);
            break;
        }
        Py_DECREF(x);
    }
    return out;
}

static PyObject *
oid_keys(Book *b, Order *o)
{
    Span s = o->order_id;
    if (s.len < 0 || tab_get(&b->oid, SPAN_PTR(o, s), s.len) != o)
        return PyList_New(0);
    PyObject *x = span_bytes(o, s);
    if (x == NULL)
        return NULL;
    return Py_BuildValue("[N]", x);
}

/* the tuple OrderBook.restore(state, register) reads; with_keys: the order is handed over
 * whole (its fills, requests and keys); else it is only handed on (let go: its fills were
 * cleared by _forget, no request waits) */
PyObject *
order_state(Book *b, Order *o, int with_keys)
{
    PyObject *lk = Py_None;
    Py_INCREF(lk);
    if (o->has_lk) {
        Py_DECREF(lk);
        lk = Py_BuildValue("(NNNN)", span_bytes(o, o->lk[0]), span_bytes(o, o->lk[1]),
                           span_bytes(o, o->lk[2]), span_bytes(o, o->lk[3]));
        if (lk == NULL)
            return NULL;
    }
    PyObject *sup = Py_None;
    Py_INCREF(sup);
    if (o->has_sup) {
        Py_DECREF(sup);
        sup = span_list(o, o->sup, o->nsup);
        if (sup == NULL) {
            Py_DECREF(lk);
            return NULL;
        }
    }
    PyObject *closed_at = o->closed ? PyFloat_FromDouble(o->closed_at) : Py_NewRef(Py_None);
    PyObject *fills = with_keys ? fill_list(o) : PyList_New(0);
    PyObject *pending = with_keys ? pending_list(b, o) : PyList_New(0);
    PyObject *cls = with_keys ? cl_keys(b, o) : PyList_New(0);
    PyObject *oids = with_keys ? oid_keys(b, o) : PyList_New(0);
    if (closed_at == NULL || fills == NULL || pending == NULL || cls == NULL || oids == NULL) {
        Py_XDECREF(closed_at);
        Py_XDECREF(fills);
        Py_XDECREF(pending);
        Py_XDECREF(cls);
        Py_XDECREF(oids);
        Py_DECREF(lk);
        Py_DECREF(sup);
        return NULL;
    }
    return Py_BuildValue(
        "(LNNNNNNNNNNNNNNNNNNNNiOiNNN)",
        o->number, span_list(o, o->cls, o->ncls), span_bytes(o, o->order_id),
        span_bytes(o, o->secondary_id), span_bytes(o, o->symbol), span_bytes(o, o->side),
        span_bytes(o, o->qty), span_bytes(o, o->price), span_bytes(o, o->status),
        dec_text(o->cum), dec_text(o->notional), span_bytes(o, o->cum_text),
        span_bytes(o, o->avg_text), lk, fills, span_list(o, o->execs, o->nexecs), pending,
        sup, span_bytes(o, o->first_stamp), span_bytes(o, o->last_stamp), closed_at,
        o->n_fills, o->has_new ? Py_True : Py_False, o->reports, span_bytes(o, o->last_text),
        cls, oids);
}
