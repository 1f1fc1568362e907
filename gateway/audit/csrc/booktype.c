/* The Book as Python sees it (waiting.FastBook): OrderBook.fast and OrderBook.closed.
 *
 *   claim(v, seq, ref)   hand the Python book the orders a message it is about to read names
 *   promote_pending()    ... every order with a request waiting (the end of the log)
 *   promote_all()        ... every order still kept (the end of the log)
 *   add(chain), discard(chain), evict(now, force, release), len(): the closed queue
 *   sizes()              entries of its containers
 *
 * Handing an order over ("promoting" it) makes it a Chain (OrderBook.restore) that takes the
 * order's keys, requests and place in the closed queue: from then on it is Python's.
 * Letting an order go (evict) is _forget and on_closed: its summary line is written here when
 * an on_summary receiver is set and its texts are plain, else it is made a Chain and handed to
 * on_closed.
 */
#include "cscan.h"

#include <stdlib.h>

static PyObject *s_restore, *s_on_closed, *s_closed_at;

PyObject *
book_create(Engine *e, PyObject *args)
{
    PyObject *pybook, *session, *session_json;
    if (!PyArg_ParseTuple(args, "OOS", &pybook, &session, &session_json))
        return NULL;
    if (s_restore == NULL) {
        s_restore = PyUnicode_InternFromString("restore");
        s_on_closed = PyUnicode_InternFromString("on_closed");
        s_closed_at = PyUnicode_InternFromString("closed_at");
        if (s_closed_at == NULL)
            return NULL;
    }
    Book *b = PyObject_GC_New(Book, &BookType);
    if (b == NULL)
        return NULL;
    memset((char *)b + sizeof(PyObject), 0, sizeof(Book) - sizeof(PyObject));
    b->engine = (Engine *)Py_NewRef(e);
    b->pybook = Py_NewRef(pybook);
    b->session = Py_NewRef(session);
    b->session_json = Py_NewRef(session_json);
    b->by_cl = PyObject_GetAttrString(pybook, "by_cl");
    b->by_oid = PyObject_GetAttrString(pybook, "by_oid");
    b->exec_ids = PyObject_GetAttrString(pybook, "exec_ids");
    b->by_seq = PyObject_GetAttrString(pybook, "by_seq");
    b->expected = PyObject_GetAttrString(session, "expected");
    b->local = PyObject_GetAttrString(session, "local");
    b->py_nodes = PyDict_New();
    b->last_stamp_len = -1;
    PyObject_GC_Track(b);
    if (b->by_cl == NULL || b->by_oid == NULL || b->exec_ids == NULL || b->by_seq == NULL
            || b->expected == NULL || b->local == NULL || b->py_nodes == NULL) {
        Py_DECREF(b);
        return NULL;
    }
    if (!PyDict_CheckExact(b->by_cl) || !PyDict_CheckExact(b->by_oid)
            || !PyDict_CheckExact(b->exec_ids) || !PyDict_CheckExact(b->by_seq)
            || !PyDict_CheckExact(b->expected) || !PyBytes_CheckExact(b->local)) {
        PyErr_SetString(PyExc_TypeError, "Book: the book's indexes are dicts, local is bytes");
        Py_DECREF(b);
        return NULL;
    }
    return (PyObject *)b;
}

/* --- handing orders over ---------------------------------------------------------------------- */

static void
drop(Book *b, Order *o)
{
    b->orders--;
    order_clear(o);
    order_decref(o);
}

/* o becomes a Chain of the Python book (its keys, requests and place in the closed queue) */
int
book_promote(Book *b, Order *o)
{
    PyObject *state = order_state(b, o, 1);
    if (state == NULL)
        return -1;
    PyObject *chain = PyObject_CallMethodObjArgs(b->pybook, s_restore, state, Py_True, NULL);
    Py_DECREF(state);
    if (chain == NULL)
        return -1;
    for (int i = 0; i < o->ncls; i++)
        tab_del_if(&b->cl, SPAN_PTR(o, o->cls[i]), o->cls[i].len, o);
    if (o->order_id.len >= 0)
        tab_del_if(&b->oid, SPAN_PTR(o, o->order_id), o->order_id.len, o);
    for (int i = 0; i < o->nexecs; i++)
        tab_del_if(&b->exec, SPAN_PTR(o, o->execs[i]), o->execs[i].len, o);
    for (int i = 0; i < o->npending; i++) {
        Req *q = &o->pending[i];
        SeqSlot *slot = seq_get(&b->seq, SEQ_KEY(q->sender, q->seq));
        if (slot != NULL && slot->o == o && slot->n == q->n)
            seq_del(&b->seq, SEQ_KEY(q->sender, q->seq));
    }
    int r = 0;
    if (o->node != NULL) {  /* it keeps its place in the closed queue */
        Node *nd = o->node;
        nd->o = NULL;
        nd->chain = chain;
        PyObject *addr = PyLong_FromVoidPtr(nd);
        r = addr == NULL ? -1 : PyDict_SetItem(b->py_nodes, chain, addr);
        Py_XDECREF(addr);
    }
    Py_DECREF(chain);
    drop(b, o);
    return r;
}

/* the C's orders (each once), for promote_pending and promote_all: every order has its first
 * ClOrdID in the index */
static Order **
all_orders(Book *b, size_t *count)
{
    *count = 0;
    Order **out = malloc((b->cl.n + 1) * sizeof(Order *));
    if (out == NULL) {
        PyErr_NoMemory();
        return NULL;
    }
    for (size_t i = 0; b->cl.s != NULL && i <= b->cl.mask; i++) {
        Order *o = b->cl.s[i].o;
        if (o == NULL)
            continue;
        Span first = o->cls[0];
        if (b->cl.s[i].off == first.off && b->cl.s[i].len == first.len)
            out[(*count)++] = o;
    }
    return out;
}

static int
by_number(const void *a, const void *b)
{
    long long x = (*(Order *const *)a)->number, y = (*(Order *const *)b)->number;
    return x < y ? -1 : x > y;
}

static PyObject *
promote_where(Book *b, int pending_only)
{
    size_t n;
    Order **all = all_orders(b, &n);
    if (all == NULL)
        return NULL;
    qsort(all, n, sizeof(Order *), by_number);
    for (size_t i = 0; i < n; i++) {
        Order *o = all[i];
        if (o->live && (!pending_only || o->npending) && book_promote(b, o) < 0) {
            free(all);
            return NULL;
        }
    }
    free(all);
    Py_RETURN_NONE;
}

static PyObject *
book_promote_pending(Book *b, PyObject *unused)
{
    return promote_where(b, 1);
}

static PyObject *
book_promote_all(Book *b, PyObject *unused)
{
    if (b->orders && b->cl.n == 0) {
        PyErr_SetString(PyExc_RuntimeError, "Book: orders kept without a ClOrdID");
        return NULL;
    }
    return promote_where(b, 0);
}

static int
claim_key(Book *b, Table *t, PyObject *v, int f)
{
    PyObject *k = PyTuple_GET_ITEM(v, field_at[f]);
    if (!PyBytes_Check(k))
        return 0;
    Order *o = tab_get(t, PyBytes_AS_STRING(k), PyBytes_GET_SIZE(k));
    return o != NULL ? book_promote(b, o) : 0;
}

static int
claim_seq(Book *b, PyObject *sender, PyObject *seq)
{
    if (!PyBytes_Check(sender) || !PyLong_Check(seq))
        return 0;
    int overflow;
    long long n = PyLong_AsLongLongAndOverflow(seq, &overflow);
    if (overflow || n < 0 || n >= MAX_SEQ)
        return 0;
    for (int i = 0; i < b->nsenders; i++) {
        PyObject *x = b->senders[i];
        if (PyBytes_GET_SIZE(x) == PyBytes_GET_SIZE(sender)
                && memcmp(PyBytes_AS_STRING(x), PyBytes_AS_STRING(sender),
                          (size_t)PyBytes_GET_SIZE(x)) == 0) {
            SeqSlot *slot = seq_get(&b->seq, SEQ_KEY(i, n));
            return slot != NULL ? book_promote(b, slot->o) : 0;
        }
    }
    return 0;
}

static PyObject *
book_claim(Book *b, PyObject *args)
{
    PyObject *v, *seq, *ref;
    if (!PyArg_ParseTuple(args, "O!OO", &PyTuple_Type, &v, &seq, &ref))
        return NULL;
    if (PyTuple_GET_SIZE(v) < n_wanted) {
        PyErr_SetString(PyExc_ValueError, "claim: not the scanner's fields");
        return NULL;
    }
    if (claim_key(b, &b->cl, v, F_CL) < 0 || claim_key(b, &b->cl, v, F_ORIG) < 0
            || claim_key(b, &b->cl, v, F_BIZ_REF) < 0 || claim_key(b, &b->oid, v, F_OID) < 0
            || claim_key(b, &b->exec, v, F_EXEC_ID) < 0
            || claim_seq(b, PyTuple_GET_ITEM(v, field_at[F_SENDER]), seq) < 0
            || claim_seq(b, PyTuple_GET_ITEM(v, field_at[F_TARGET]), ref) < 0)
        return NULL;
    Py_RETURN_NONE;
}

/* --- the closed queue -------------------------------------------------------------------------- */

static PyObject *
book_add(Book *b, PyObject *chain)
{
    if (PyDict_Contains(b->py_nodes, chain)) {  /* OrderedDict: it stays where it is */
        Py_RETURN_NONE;
    }
    Node *nd = queue_append(b);
    if (nd == NULL)
        return NULL;
    nd->chain = chain;
    PyObject *addr = PyLong_FromVoidPtr(nd);
    if (addr == NULL || PyDict_SetItem(b->py_nodes, chain, addr) < 0) {
        Py_XDECREF(addr);
        queue_unlink(b, nd);
        free(nd);
        return NULL;
    }
    Py_DECREF(addr);
    Py_RETURN_NONE;
}

static PyObject *
book_discard(Book *b, PyObject *chain)
{
    PyObject *addr = PyDict_GetItemWithError(b->py_nodes, chain);
    if (addr == NULL) {
        if (PyErr_Occurred())
            return NULL;
        Py_RETURN_NONE;
    }
    Node *nd = PyLong_AsVoidPtr(addr);
    queue_unlink(b, nd);
    free(nd);
    if (PyDict_DelItem(b->py_nodes, chain) < 0)
        return NULL;
    Py_RETURN_NONE;
}

/* _forget and on_closed for an order of the C */
static int
let_go(Book *b, Order *o)
{
    Engine *e = b->engine;
    for (int i = 0; i < o->ncls; i++)
        tab_del_if(&b->cl, SPAN_PTR(o, o->cls[i]), o->cls[i].len, o);
    if (o->order_id.len >= 0)
        tab_del_if(&b->oid, SPAN_PTR(o, o->order_id), o->order_id.len, o);
    for (int i = 0; i < o->nexecs; i++)
        tab_del_if(&b->exec, SPAN_PTR(o, o->execs[i]), o->execs[i].len, o);
    o->nfills = 0;  /* chain.fills.clear() */
    int r = e->on_summary != NULL ? order_json(e, b, o) : 0;
    if (r == 0) {
        PyObject *state = NULL, *chain = NULL, *sink = NULL, *done = NULL;
        if (engine_flush_summaries(e) == 0 && (state = order_state(b, o, 0)) != NULL
                && (chain = PyObject_CallMethodObjArgs(b->pybook, s_restore, state, Py_False,
                                                       NULL)) != NULL
                && (sink = PyObject_GetAttr(b->pybook, s_on_closed)) != NULL)
            done = PyObject_CallOneArg(sink, chain);
        r = done != NULL ? 0 : -1;
        Py_XDECREF(state);
        Py_XDECREF(chain);
        Py_XDECREF(sink);
        Py_XDECREF(done);
    }
    drop(b, o);
    return r < 0 ? -1 : 0;
}

static PyObject *
book_evict(Book *b, PyObject *args)
{
    double now;
    int force;
    PyObject *release;
    if (!PyArg_ParseTuple(args, "dpO", &now, &force, &release))
        return NULL;
    Engine *e = b->engine;
    double horizon = now - e->rules.closed_window;
    while (b->head != NULL) {
        Node *nd = b->head;
        int none = 0;
        double at;
        if (nd->o != NULL)
            at = nd->o->closed_at;
        else {
            PyObject *x = PyObject_GetAttr(nd->chain, s_closed_at);
            if (x == NULL)
                return NULL;
            none = x == Py_None;
            at = none ? 0.0 : PyFloat_AsDouble(x);
            Py_DECREF(x);
            if (!none && at == -1.0 && PyErr_Occurred())
                return NULL;
        }
        if (!force && b->queued <= e->rules.max_closed && (none || at > horizon))
            break;
        queue_unlink(b, nd);
        if (nd->o != NULL) {
            Order *o = nd->o;
            free(nd);
            o->node = NULL;
            if (let_go(b, o) < 0)
                return NULL;
            continue;
        }
        PyObject *chain = Py_NewRef(nd->chain);
        free(nd);
        PyObject *done = NULL;
        if (PyDict_DelItem(b->py_nodes, chain) == 0 && engine_flush_summaries(e) == 0)
            done = PyObject_CallOneArg(release, chain);
        Py_DECREF(chain);
        if (done == NULL)
            return NULL;
        Py_DECREF(done);
    }
    if (engine_flush_summaries(e) < 0)
        return NULL;
    Py_RETURN_NONE;
}

static Py_ssize_t
book_len(Book *b)
{
    return b->queued;
}

static PyObject *
book_sizes(Book *b, PyObject *unused)
{
    return Py_BuildValue("{s:n,s:n,s:n,s:n,s:n,s:n}", "orders", b->orders,
                         "by_cl_ord_id", (Py_ssize_t)b->cl.n, "by_order_id", (Py_ssize_t)b->oid.n,
                         "exec_ids", (Py_ssize_t)b->exec.n, "requests_by_seq",
                         (Py_ssize_t)b->seq.n, "closed", b->queued);
}

/* --- the type ---------------------------------------------------------------------------------- */

static int
book_traverse(Book *b, visitproc visit, void *arg)
{
    Py_VISIT(b->engine);
    Py_VISIT(b->pybook);
    Py_VISIT(b->session);
    Py_VISIT(b->by_cl);
    Py_VISIT(b->by_oid);
    Py_VISIT(b->exec_ids);
    Py_VISIT(b->by_seq);
    Py_VISIT(b->expected);
    Py_VISIT(b->py_nodes);
    return 0;
}

static int
book_clear_refs(Book *b)
{
    Py_CLEAR(b->engine);
    Py_CLEAR(b->pybook);
    Py_CLEAR(b->session);
    Py_CLEAR(b->by_cl);
    Py_CLEAR(b->by_oid);
    Py_CLEAR(b->exec_ids);
    Py_CLEAR(b->by_seq);
    Py_CLEAR(b->expected);
    Py_CLEAR(b->py_nodes);
    return 0;
}

static void
book_dealloc(Book *b)
{
    PyObject_GC_UnTrack(b);
    size_t n = 0;
    Order **all = b->cl.n ? all_orders(b, &n) : NULL;
    for (size_t i = 0; i < n; i++)
        drop(b, all[i]);
    free(all);
    PyErr_Clear();
    while (b->head != NULL) {
        Node *nd = b->head;
        queue_unlink(b, nd);
        free(nd);
    }
    tab_free(&b->cl);
    tab_free(&b->oid);
    tab_free(&b->exec);
    seq_free(&b->seq);
    book_clear_refs(b);
    Py_CLEAR(b->local);
    Py_CLEAR(b->session_json);
    for (int i = 0; i < b->nsenders; i++)
        Py_CLEAR(b->senders[i]);
    PyObject_GC_Del(b);
}

static PyMethodDef book_methods[] = {
    {"claim", (PyCFunction)book_claim, METH_VARARGS,
     "claim(v, seq, ref): hand over the orders the message v names"},
    {"promote_pending", (PyCFunction)book_promote_pending, METH_NOARGS,
     "promote_pending(): hand over every order with a request waiting"},
    {"promote_all", (PyCFunction)book_promote_all, METH_NOARGS,
     "promote_all(): hand over every order still kept"},
    {"add", (PyCFunction)book_add, METH_O, "add(chain): a closed chain joins the queue"},
    {"discard", (PyCFunction)book_discard, METH_O, "discard(chain): it leaves the queue"},
    {"evict", (PyCFunction)book_evict, METH_VARARGS,
     "evict(now, force, release): let go of what is past its window"},
    {"sizes", (PyCFunction)book_sizes, METH_NOARGS, "sizes() -> {container: entries}"},
    {NULL, NULL, 0, NULL},
};

static PySequenceMethods book_as_sequence = {
    .sq_length = (lenfunc)book_len,
};

PyTypeObject BookType = {
    PyVarObject_HEAD_INIT(NULL, 0)
    .tp_name = "gateway.audit._cscan.Book",
    .tp_doc = "One session's orders kept by the C (gateway/audit/csrc/booktype.c).",
    .tp_basicsize = sizeof(Book),
    .tp_flags = Py_TPFLAGS_DEFAULT | Py_TPFLAGS_HAVE_GC,
    .tp_dealloc = (destructor)book_dealloc,
    .tp_traverse = (traverseproc)book_traverse,
    .tp_clear = (inquiry)book_clear_refs,
    .tp_methods = book_methods,
    .tp_as_sequence = &book_as_sequence,
};
