/* The loop over the messages (checker.Auditor's, for the messages the C can check): reading
 * records or file-log batches, finding each message's session, checking its MsgSeqNum, handing
 * it to its book (book.c), and stopping for Python when Python has work:
 *
 *   Engine.run(iterator, n) -> (kind, n, item)
 *       kind 0: the iterator is done; 1: the clock (n is a multiple of TICK, or 1: item is the
 *       stamp, Auditor._tick runs); 2: item is a record the C declines (Auditor._message reads
 *       it); 3: item None from a followed file; 4: a message past ``until`` (not read).
 *       n: the messages read, as Auditor.feed counts them.
 *
 * While it runs, what it changes of a session (messages, in, last stamp, expected MsgSeqNums)
 * and of a book (now, orders, fills, open and closed chains) is kept here and written to the
 * Python objects when it returns: Python sees them as the Python loop would have left them,
 * and what Python changes in between is read again at the next run.
 *
 * Requests wait in one heap here, by (deadline, number) as waiting.Deadlines orders them:
 * Engine.promote_due(now), called by Auditor._tick before the deadlines, hands every order
 * with a request now due to its book (an unanswered request is a finding).
 */
#include "cscan.h"

#include <stdlib.h>

int field_at[N_F];

int
engine_fields(void)
{
    static const long long tags[N_F] = {35, 34, 43, 49, 56, 11, 41, 37, 17, 20, 150, 39, 14,
                                        151, 6, 31, 32, 38, 44, 54, 55, 198, 58, 45, 379};
    for (int i = 0; i < N_F; i++) {
        field_at[i] = wanted_index(tags[i]);
        if (field_at[i] < 0) {
            PyErr_Format(PyExc_ValueError, "tag %lld is not among the scanner's", tags[i]);
            return -1;
        }
    }
    return 0;
}

/* --- the rules ---------------------------------------------------------------------------- */

int
set_has(const StrSet *s, const char *v, Py_ssize_t n)
{
    for (int i = 0; i < s->n; i++)
        if (s->len[i] == n && memcmp(s->v[i], v, (size_t)n) == 0)
            return 1;
    return 0;
}

const StrSet *
map_get(const StrMap *m, const char *k, Py_ssize_t n)
{
    for (int i = 0; i < m->n; i++)
        if (m->klen[i] == n && memcmp(m->k[i], k, (size_t)n) == 0)
            return &m->v[i];
    return NULL;
}

static int
short_bytes(PyObject *x, char *out, unsigned char *len)
{
    if (!PyBytes_Check(x) || PyBytes_GET_SIZE(x) > 8) {
        PyErr_SetString(PyExc_ValueError, "rules: values are bytes of at most 8");
        return -1;
    }
    memcpy(out, PyBytes_AS_STRING(x), (size_t)PyBytes_GET_SIZE(x));
    *len = (unsigned char)PyBytes_GET_SIZE(x);
    return 0;
}

static int
to_set(PyObject *src, StrSet *s)
{
    s->n = 0;
    if (PyBytes_Check(src))
        return short_bytes(src, s->v[s->n], &s->len[s->n]) < 0 ? -1 : (s->n = 1, 0);
    PyObject *it = PyObject_GetIter(src);
    if (it == NULL)
        return -1;
    PyObject *x;
    while ((x = PyIter_Next(it)) != NULL) {
        int r = s->n < 24 ? short_bytes(x, s->v[s->n], &s->len[s->n]) : -1;
        if (s->n >= 24)
            PyErr_SetString(PyExc_ValueError, "rules: too many values");
        Py_DECREF(x);
        if (r < 0) {
            Py_DECREF(it);
            return -1;
        }
        s->n++;
    }
    Py_DECREF(it);
    return PyErr_Occurred() ? -1 : 0;
}

static int
to_map(PyObject *src, StrMap *m)
{
    m->n = 0;
    if (!PyDict_Check(src) || PyDict_GET_SIZE(src) > 24) {
        PyErr_SetString(PyExc_ValueError, "rules: a dict of at most 24");
        return -1;
    }
    Py_ssize_t pos = 0;
    PyObject *k, *v;
    while (PyDict_Next(src, &pos, &k, &v)) {
        if (short_bytes(k, m->k[m->n], &m->klen[m->n]) < 0 || to_set(v, &m->v[m->n]) < 0)
            return -1;
        m->n++;
    }
    return 0;
}

static int
rules_from(PyObject *t, Rules *R)
{
    PyObject *terminal, *live, *next, *fits, *unchecked, *fix42, *trade;
    if (!PyArg_ParseTuple(t, "OOOOOOOddLL", &terminal, &live, &next, &fits, &unchecked, &fix42,
                          &trade, &R->answer_timeout, &R->closed_window, &R->max_closed,
                          &R->tick))
        return -1;
    if (R->tick <= 0 || (R->tick & (R->tick - 1))) {
        PyErr_SetString(PyExc_ValueError, "rules: TICK is a power of two");
        return -1;
    }
    return (to_set(terminal, &R->terminal) < 0 || to_set(live, &R->live) < 0
            || to_map(next, &R->next_status) < 0 || to_map(fits, &R->status_for_exec_type) < 0
            || to_set(unchecked, &R->unchecked) < 0 || to_set(fix42, &R->fix42_trades) < 0
            || to_set(trade, &R->trade) < 0) ? -1 : 0;
}

/* --- counters and the heap of deadlines ------------------------------------------------------ */

long long
engine_next(PyObject *counter)
{
    PyObject *x = PyIter_Next(counter);
    if (x == NULL) {
        if (!PyErr_Occurred())
            PyErr_SetString(PyExc_RuntimeError, "a counter ran out");
        return -1;
    }
    long long v = PyLong_AsLongLong(x);
    Py_DECREF(x);
    return v;
}

static int
due_less(const Due *a, const Due *b)
{
    return a->at < b->at || (a->at == b->at && a->n < b->n);
}

int
engine_push_due(Engine *e, double at, long long n, Order *o)
{
    if (e->nheap == e->capheap) {
        size_t c = e->capheap ? e->capheap * 2 : 256;
        Due *h = realloc(e->heap, c * sizeof(Due));
        if (h == NULL) {
            PyErr_NoMemory();
            return -1;
        }
        e->heap = h;
        e->capheap = c;
    }
    size_t i = e->nheap++;
    Due d = {at, n, o};
    o->refs++;
    while (i > 0) {
        size_t p = (i - 1) / 2;
        if (!due_less(&d, &e->heap[p]))
            break;
        e->heap[i] = e->heap[p];
        i = p;
    }
    e->heap[i] = d;
    return 0;
}

static Due
pop_due(Engine *e)
{
    Due top = e->heap[0];
    Due last = e->heap[--e->nheap];
    size_t i = 0, n = e->nheap;
    for (;;) {
        size_t c = 2 * i + 1;
        if (c >= n)
            break;
        if (c + 1 < n && due_less(&e->heap[c + 1], &e->heap[c]))
            c++;
        if (!due_less(&e->heap[c], &last))
            break;
        e->heap[i] = e->heap[c];
        i = c;
    }
    if (n)
        e->heap[i] = last;
    return top;
}

static PyObject *
engine_promote_due(Engine *e, PyObject *arg)
{
    double now = PyFloat_AsDouble(arg);
    if (now == -1.0 && PyErr_Occurred())
        return NULL;
    while (e->nheap && e->heap[0].at <= now) {
        Due d = pop_due(e);
        Order *o = d.o;
        int waiting = 0;
        for (int i = 0; o->live && i < o->npending; i++)
            waiting |= o->pending[i].n == d.n;
        int r = waiting ? book_promote(o->book, o) : 0;
        order_decref(o);
        if (r < 0)
            return NULL;
    }
    Py_RETURN_NONE;
}

/* --- what a run changed, written back --------------------------------------------------------- */

static PyObject *s_now, *s_orders, *s_fills, *s_open_chains, *s_closed_chains, *s_messages,
                *s_incoming, *s_last_stamp, *s_sessions, *s_book, *s_fast;

static int
add_attr(PyObject *obj, PyObject *name, long long delta)
{
    if (delta == 0)
        return 0;
    PyObject *v = PyObject_GetAttr(obj, name);
    if (v == NULL)
        return -1;
    PyObject *d = PyLong_FromLongLong(delta);
    PyObject *sum = d ? PyNumber_Add(v, d) : NULL;
    Py_DECREF(v);
    Py_XDECREF(d);
    if (sum == NULL)
        return -1;
    int r = PyObject_SetAttr(obj, name, sum);
    Py_DECREF(sum);
    return r;
}

static int
write_back(Book *b)
{
    if (b->d_messages) {
        PyObject *stamp = PyBytes_FromStringAndSize(b->last_stamp, b->last_stamp_len);
        if (stamp == NULL || PyObject_SetAttr(b->session, s_last_stamp, stamp) < 0) {
            Py_XDECREF(stamp);
            return -1;
        }
        Py_DECREF(stamp);
    }
    if (add_attr(b->session, s_messages, b->d_messages) < 0
            || add_attr(b->session, s_incoming, b->d_incoming) < 0
            || add_attr(b->pybook, s_orders, b->d_orders) < 0
            || add_attr(b->pybook, s_fills, b->d_fills) < 0
            || add_attr(b->pybook, s_open_chains, b->d_open) < 0
            || add_attr(b->pybook, s_closed_chains, b->d_closed) < 0)
        return -1;
    b->d_messages = b->d_incoming = b->d_orders = b->d_fills = b->d_open = b->d_closed = 0;
    if (b->now_dirty) {
        PyObject *now = PyFloat_FromDouble(b->now);
        if (now == NULL || PyObject_SetAttr(b->pybook, s_now, now) < 0) {
            Py_XDECREF(now);
            return -1;
        }
        Py_DECREF(now);
        b->now_dirty = 0;
    }
    for (int i = 0; i < b->nsenders; i++) {
        if (!b->expect_dirty[i])
            continue;
        PyObject *v = PyLong_FromLongLong(b->expect[i]);
        if (v == NULL || PyDict_SetItem(b->expected, b->senders[i], v) < 0) {
            Py_XDECREF(v);
            return -1;
        }
        Py_DECREF(v);
        b->expect_dirty[i] = 0;
    }
    b->run = 0;
    return 0;
}

static int
write_all(Engine *e)
{
    int r = 0;
    for (int i = 0; i < e->ntouched; i++)
        if (write_back(e->touched[i]) < 0)
            r = -1;
    e->ntouched = 0;
    e->run++;
    return r;
}

/* the book's Python state, read at its first message of a run */
static int
touch(Engine *e, Book *b)
{
    if (b->run == e->run)
        return 0;
    if (e->ntouched == MAX_TOUCHED && write_all(e) < 0)
        return -1;
    b->run = e->run;
    e->touched[e->ntouched++] = b;
    PyObject *now = PyObject_GetAttr(b->pybook, s_now);
    if (now == NULL)
        return -1;
    b->now = PyFloat_AsDouble(now);
    Py_DECREF(now);
    if (b->now == -1.0 && PyErr_Occurred())
        return -1;
    b->now_dirty = 0;
    for (int i = 0; i < b->nsenders; i++)
        if (book_load_expected(b, i) < 0)
            return -1;
    return 0;
}

int
engine_flush_summaries(Engine *e)
{
    if (e->out_orders == 0)
        return 0;
    PyObject *r = PyObject_CallFunction(e->on_summary, "y#LLL", e->out, (Py_ssize_t)e->outlen,
                                        e->out_orders, e->out_fills, e->out_open);
    e->outlen = 0;
    e->out_orders = e->out_fills = e->out_open = 0;
    if (r == NULL)
        return -1;
    Py_DECREF(r);
    return 0;
}

/* --- sessions ------------------------------------------------------------------------------- */

static void
entries_clear(Engine *e)
{
    for (int i = 0; i < e->nentries; i++) {
        Py_CLEAR(e->entries[i].origin);
        Py_CLEAR(e->entries[i].session);
        Py_CLEAR(e->entries[i].book);
    }
    e->nentries = 0;
}

/* the session of (origin, sender, target) as Auditor._message finds it (origin.sessions);
 * NULL with *r DECLINE when Python must make it (or the C cannot keep it) */
static Entry *
entry_of(Engine *e, Msg *m, int *r)
{
    const char *s = PTR(m, F_SENDER), *t = PTR(m, F_TARGET);
    Py_ssize_t sn = LEN(m, F_SENDER), tn = LEN(m, F_TARGET);
    for (int i = 0; i < e->nentries; i++) {
        Entry *en = &e->entries[i];
        if (en->origin == m->origin && en->slen == sn && en->tlen == tn
                && memcmp(en->sender, s, (size_t)sn) == 0
                && memcmp(en->target, t, (size_t)tn) == 0)
            return en;
    }
    *r = DECLINE;
    if (sn > 47 || tn > 47)
        return NULL;
    PyObject *sessions = PyObject_GetAttr(m->origin, s_sessions);
    PyObject *key = Py_BuildValue("(y#y#)", s, sn, t, tn);
    PyObject *v = sessions && key ? PyDict_GetItemWithError(sessions, key) : NULL;
    Py_XINCREF(v);
    Py_XDECREF(sessions);
    Py_XDECREF(key);
    if (v == NULL) {
        if (PyErr_Occurred())
            *r = ERROR;
        return NULL;
    }
    Book *b = NULL;
    int sender = 0, incoming = 0;
    if (v != e->skip) {
        PyObject *pybook = PyObject_GetAttr(v, s_book);
        PyObject *fast = pybook ? PyObject_GetAttr(pybook, s_fast) : NULL;
        Py_XDECREF(pybook);
        if (fast == NULL || !PyObject_TypeCheck(fast, &BookType)) {
            Py_XDECREF(fast);
            Py_DECREF(v);
            if (PyErr_Occurred())
                *r = ERROR;
            return NULL;
        }
        b = (Book *)fast;
        sender = book_sender(b, s, sn);
        incoming = PyBytes_GET_SIZE(b->local) != sn
                   || memcmp(PyBytes_AS_STRING(b->local), s, (size_t)sn) != 0;
        if (sender < 0) {
            if (sender == -2)
                *r = ERROR;
            Py_DECREF(fast);
            Py_DECREF(v);
            return NULL;
        }
    }
    if (e->nentries == ENTRIES)
        entries_clear(e);
    Entry *en = &e->entries[e->nentries++];
    Py_INCREF(m->origin);
    en->origin = m->origin;
    memcpy(en->sender, s, (size_t)sn);
    memcpy(en->target, t, (size_t)tn);
    en->slen = (int)sn;
    en->tlen = (int)tn;
    en->skip = b == NULL;
    en->session = v;
    en->book = b;
    en->sender_index = sender;
    en->incoming = incoming;
    /* every origin a request may name stays alive while the engine does */
    if (PySet_Add(e->origins, m->origin) < 0) {
        *r = ERROR;
        return NULL;
    }
    *r = OK;
    return en;
}

/* --- one message ------------------------------------------------------------------------------ */

static int
parse_seq(Msg *m, long long *out)
{
    if (!HAS(m, F_SEQ))
        return 0;
    const char *p = PTR(m, F_SEQ);
    Py_ssize_t n = LEN(m, F_SEQ);
    if (n < 1 || n > 16)
        return 0;
    long long v = 0;
    for (Py_ssize_t i = 0; i < n; i++) {
        if (p[i] < '0' || p[i] > '9')
            return 0;
        v = v * 10 + (p[i] - '0');
    }
    *out = v;
    return 1;
}

/* Auditor._message for one message: OK, SKIPPED (another session, --session), DECLINE (read
 * nothing, changed nothing: Python's) or ERROR */
static int
process(Engine *e, Msg *m)
{
    if (!scan_clean(m->raw, m->rawlen, m->st, m->ln) || !HAS(m, F_SENDER)
            || !HAS(m, F_TARGET) || m->stamplen > 63)
        return DECLINE;
    int r = OK;
    Entry *en = entry_of(e, m, &r);
    if (en == NULL)
        return r;
    if (en->skip) {
        e->skipped++;
        return SKIPPED;
    }
    Book *b = en->book;
    if (touch(e, b) < 0)
        return ERROR;
    long long seq;
    int si = en->sender_index;
    if (!parse_seq(m, &seq) || !b->expect_known[si] || b->expect[si] != seq)
        return DECLINE;  /* a gap, a resend, a reset: _sequence */
    if (LEN(m, F_MSG_TYPE) == 1) {
        switch (PTR(m, F_MSG_TYPE)[0]) {
        case '8':
            r = book_report(b, m);
            break;
        case 'D':
            r = book_new_order(b, m, seq, si, 0);
            break;
        case 'F':
        case 'G':
            r = book_cancel(b, m, seq, si, 0);
            break;
        case '9':
            r = book_cancel_reject(b, m);
            break;
        case 'j':
        case '3':
        case 'A':
        case '5':
            return DECLINE;  /* rejects, logons and logouts */
        default:
            break;
        }
        if (r != OK)
            return r;
    }
    b->d_messages++;
    b->d_incoming += en->incoming;
    memcpy(b->last_stamp, m->stamp, (size_t)m->stamplen);
    b->last_stamp_len = (int)m->stamplen;
    b->expect[si] = seq + 1;
    b->expect_dirty[si] = 1;
    return OK;
}

/* stamp > until, as bytes compare */
static int
after(Engine *e, const char *s, Py_ssize_t n)
{
    Py_ssize_t un = PyBytes_GET_SIZE(e->until);
    int c = memcmp(s, PyBytes_AS_STRING(e->until), (size_t)(n < un ? n : un));
    return c > 0 || (c == 0 && n > un);
}

enum { K_END, K_TICK, K_DECLINED, K_IDLE, K_STOPPED };

static PyObject *
engine_run(Engine *e, PyObject *args)
{
    PyObject *it;
    long long n;
    if (!PyArg_ParseTuple(args, "OL", &it, &n))
        return NULL;
    e->run++;
    long long tick_mask = e->rules.tick - 1;
    Py_ssize_t until = PyBytes_GET_SIZE(e->until);
    int kind = K_END;
    PyObject *item = NULL;
    Msg m;
    for (;;) {
        PyObject *rec = NULL;
        Batch *bt = (Batch *)e->batch;
        if (bt != NULL) {
            if (e->batch_i >= bt->count) {
                Py_CLEAR(e->batch);
                continue;
            }
            const char *s = PyByteArray_AS_STRING(bt->buf);
            Py_ssize_t *p = bt->pos + 4 * e->batch_i;
            if (p[2] + p[3] > PyByteArray_GET_SIZE(bt->buf)) {
                PyErr_SetString(PyExc_RuntimeError, "a batch read after the next one");
                goto error;
            }
            m.stamp = s + p[0];
            m.stamplen = p[1];
            m.raw = s + p[2];
            m.rawlen = p[3];
            m.line = bt->line[e->batch_i];
            m.origin = bt->origin;
        }
        else {
            PyObject *x = PyIter_Next(it);
            if (x == NULL) {
                if (PyErr_Occurred())
                    goto error;
                break;
            }
            if (x == Py_None) {
                Py_DECREF(x);
                kind = K_IDLE;
                break;
            }
            if (Py_TYPE(x) == &BatchType) {
                e->batch = x;
                e->batch_i = 0;
                continue;
            }
            rec = x;
            int overflow = 0;
            if (!PyTuple_CheckExact(x) || PyTuple_GET_SIZE(x) != 4
                    || !PyBytes_CheckExact(PyTuple_GET_ITEM(x, 0))
                    || !PyBytes_CheckExact(PyTuple_GET_ITEM(x, 1))
                    || !PyLong_CheckExact(PyTuple_GET_ITEM(x, 2))
                    || ((m.line = PyLong_AsLongLongAndOverflow(PyTuple_GET_ITEM(x, 2),
                                                               &overflow)), overflow)) {
                kind = K_DECLINED;
                item = rec;
                break;
            }
            m.stamp = PyBytes_AS_STRING(PyTuple_GET_ITEM(x, 0));
            m.stamplen = PyBytes_GET_SIZE(PyTuple_GET_ITEM(x, 0));
            m.raw = PyBytes_AS_STRING(PyTuple_GET_ITEM(x, 1));
            m.rawlen = PyBytes_GET_SIZE(PyTuple_GET_ITEM(x, 1));
            m.origin = PyTuple_GET_ITEM(x, 3);
        }
        if (until && after(e, m.stamp, m.stamplen)) {
            Py_XDECREF(rec);
            Py_CLEAR(e->batch);  /* the rest is not read */
            kind = K_STOPPED;
            break;
        }
        int r = process(e, &m);
        if (r == ERROR) {
            Py_XDECREF(rec);
            goto error;
        }
        if (r == DECLINE) {
            if (rec == NULL) {
                rec = batch_record(bt, e->batch_i++);
                if (rec == NULL)
                    goto error;
            }
            kind = K_DECLINED;
            item = rec;
            break;
        }
        if (bt != NULL)
            e->batch_i++;
        if (r == OK) {
            n++;
            if ((n & tick_mask) == 0 || n == 1) {
                kind = K_TICK;
                item = PyBytes_FromStringAndSize(m.stamp, m.stamplen);
                Py_XDECREF(rec);
                if (item == NULL)
                    goto error;
                break;
            }
        }
        else
            n++;  /* SKIPPED: counted, no clock (as Auditor._message) */
        Py_XDECREF(rec);
    }
    if (write_all(e) < 0) {
        Py_XDECREF(item);
        return NULL;
    }
    return Py_BuildValue("(iLN)", kind, n, item ? item : Py_NewRef(Py_None));
error:
    write_all(e);
    return NULL;
}

/* --- the type --------------------------------------------------------------------------------- */

static int
engine_init(Engine *e, PyObject *args, PyObject *kw)
{
    PyObject *numbers, *counter, *skip, *on_summary, *until, *rules;
    if (!PyArg_ParseTuple(args, "OOOOSO", &numbers, &counter, &skip, &on_summary, &until,
                          &rules))
        return -1;
    if (s_now == NULL) {
        s_now = PyUnicode_InternFromString("now");
        s_orders = PyUnicode_InternFromString("orders");
        s_fills = PyUnicode_InternFromString("fills");
        s_open_chains = PyUnicode_InternFromString("open_chains");
        s_closed_chains = PyUnicode_InternFromString("closed_chains");
        s_messages = PyUnicode_InternFromString("messages");
        s_incoming = PyUnicode_InternFromString("incoming");
        s_last_stamp = PyUnicode_InternFromString("last_stamp");
        s_sessions = PyUnicode_InternFromString("sessions");
        s_book = PyUnicode_InternFromString("book");
        s_fast = PyUnicode_InternFromString("fast");
        if (s_fast == NULL)
            return -1;
    }
    if (field_at[F_MSG_TYPE] == field_at[F_SEQ]) {
        PyErr_SetString(PyExc_RuntimeError, "configure() first");
        return -1;
    }
    if (rules_from(rules, &e->rules) < 0)
        return -1;
    Py_XSETREF(e->numbers, Py_NewRef(numbers));
    Py_XSETREF(e->counter, Py_NewRef(counter));
    Py_XSETREF(e->skip, Py_NewRef(skip));
    Py_XSETREF(e->on_summary, on_summary == Py_None ? NULL : Py_NewRef(on_summary));
    Py_XSETREF(e->until, Py_NewRef(until));
    if (e->origins == NULL && (e->origins = PySet_New(NULL)) == NULL)
        return -1;
    return 0;
}

static void
heap_clear(Engine *e)
{
    while (e->nheap)
        order_decref(e->heap[--e->nheap].o);
}

static int
engine_traverse(Engine *e, visitproc visit, void *arg)
{
    Py_VISIT(e->numbers);
    Py_VISIT(e->counter);
    Py_VISIT(e->skip);
    Py_VISIT(e->on_summary);
    Py_VISIT(e->origins);
    Py_VISIT(e->batch);
    for (int i = 0; i < e->nentries; i++) {
        Py_VISIT(e->entries[i].origin);
        Py_VISIT(e->entries[i].session);
        Py_VISIT(e->entries[i].book);
    }
    return 0;
}

static int
engine_clear_refs(Engine *e)
{
    Py_CLEAR(e->numbers);
    Py_CLEAR(e->counter);
    Py_CLEAR(e->skip);
    Py_CLEAR(e->on_summary);
    Py_CLEAR(e->batch);
    entries_clear(e);
    Py_CLEAR(e->origins);
    return 0;
}

static void
engine_dealloc(Engine *e)
{
    PyObject_GC_UnTrack(e);
    heap_clear(e);
    engine_clear_refs(e);
    Py_CLEAR(e->until);
    free(e->heap);
    free(e->out);
    Py_TYPE(e)->tp_free((PyObject *)e);
}

PyObject *book_create(Engine *e, PyObject *args);

static PyObject *
engine_book(Engine *e, PyObject *args)
{
    return book_create(e, args);
}

static PyObject *
engine_clear(Engine *e, PyObject *unused)
{
    heap_clear(e);
    Py_CLEAR(e->batch);
    entries_clear(e);
    if (engine_flush_summaries(e) < 0)
        return NULL;
    Py_RETURN_NONE;
}

static PyObject *
engine_take_skipped(Engine *e, PyObject *unused)
{
    long long n = e->skipped;
    e->skipped = 0;
    return PyLong_FromLongLong(n);
}

static PyObject *
engine_sizes(Engine *e, PyObject *unused)
{
    return Py_BuildValue("{s:n,s:i}", "deadlines", (Py_ssize_t)e->nheap, "sessions",
                         e->nentries);
}

static PyMethodDef engine_methods[] = {
    {"run", (PyCFunction)engine_run, METH_VARARGS, "run(iterator, n) -> (kind, n, item)"},
    {"book", (PyCFunction)engine_book, METH_VARARGS,
     "book(order_book, session, session_json) -> Book (the C's part of the session's book)"},
    {"promote_due", (PyCFunction)engine_promote_due, METH_O,
     "promote_due(now): hand every order with a request due at now to its book"},
    {"clear", (PyCFunction)engine_clear, METH_NOARGS, "clear(): the end of the audit"},
    {"take_skipped", (PyCFunction)engine_take_skipped, METH_NOARGS,
     "take_skipped() -> messages left out (--session) since the last call"},
    {"sizes", (PyCFunction)engine_sizes, METH_NOARGS, "sizes() -> {container: entries}"},
    {NULL, NULL, 0, NULL},
};

PyTypeObject EngineType = {
    PyVarObject_HEAD_INIT(NULL, 0)
    .tp_name = "gateway.audit._cscan.Engine",
    .tp_doc = "Engine(numbers, counter, skip, on_summary, until, rules): the audit's loop "
              "over the messages, for those the C can check (gateway/audit/csrc/engine.c).",
    .tp_basicsize = sizeof(Engine),
    .tp_flags = Py_TPFLAGS_DEFAULT | Py_TPFLAGS_HAVE_GC,
    .tp_new = PyType_GenericNew,
    .tp_init = (initproc)engine_init,
    .tp_dealloc = (destructor)engine_dealloc,
    .tp_traverse = (traverseproc)engine_traverse,
    .tp_clear = (inquiry)engine_clear_refs,
    .tp_methods = engine_methods,
};
