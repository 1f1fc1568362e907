/* The audit's compiled fast path (gateway/audit/native.py loads it): this file is the module,
 * the file-log reader and the field scanner; csrc/ holds the checks (csrc/cscan.h says which
 * file does what). gateway/audit/scan.py, sources.py, checker.py and chains.py hold the
 * pure-Python versions these must equal; tests/audit/test_native.py and test_fastpath.py hold
 * them to it.
 *
 * fields(raw) -> tuple | None
 *     The fields of scan.WANTED (first occurrence of each tag, as bytes; None where absent)
 *     of a *clean* message: every field `tag=value<SOH>`, the tag `-?[0-9]{1,16}` (what
 *     codec.split_fields accepts), no length-prefixed DATA field. None for anything else
 *     (the caller then runs the Python scanner, which knows the hard cases).
 *
 * filelog_batch(buf, n, final, number, origin) -> (batch, consumed, number, bad)
 *     `<timestamp> : <message>` lines of buf[:n] (a bytearray the reader fills again once the
 *     batch is read: a batch holds until then), as sources._filelog_fast reads them: a line whose
 *     " : " starts at 17..37 and that has '-' at 8 and ':' at 11 starts a message; any other
 *     line continues the message before it (blank lines before the first message are
 *     skipped). batch: a Batch of the messages complete in buf (its records() are the
 *     (stamp, raw, line, origin) tuples; the Engine reads it without making them);
 *     consumed: where the unfinished rest starts (a message that may continue, or a line
 *     without its newline), unless final; number: the line number before consumed; bad: the
 *     line number of a line that is no log line before any message (0: none; consumed is then
 *     that line's start).
 *
 * configure(wanted, length_tags, repeated): the tags, from scan.py and
 *     codec.STANDARD_DATA_FIELDS, and the indexes in wanted of fields whose few values repeat
 *     (CompIDs, BeginString, Symbol): their bytes objects are shared from a small cache, so
 *     they are neither made again nor hashed again (dict keys) for every message.
 */
#include "csrc/cscan.h"

#define TABLE 16384

int n_wanted = 0;
static long long wanted[MAX_WANTED];
static signed char index_of[TABLE];  /* tag -> index in wanted, -1 */
static unsigned char is_length[TABLE];
static long long big_length[64];
static int n_big_length = 0;
static int msg_type_index = -1;

#define CACHED 8
static unsigned char repeated[MAX_WANTED];
static PyObject *cache[MAX_WANTED][CACHED];
static unsigned char cache_next[MAX_WANTED];

/* a new reference to bytes s[0:n] for field i: from its cache when it is a repeated field */
static PyObject *
value_of(int i, const char *s, Py_ssize_t n)
{
    if (!repeated[i] || n > 64)
        return PyBytes_FromStringAndSize(s, n);
    PyObject **c = cache[i];
    for (int k = 0; k < CACHED; k++) {
        PyObject *o = c[k];
        if (o == NULL)
            break;
        if (PyBytes_GET_SIZE(o) == n && memcmp(PyBytes_AS_STRING(o), s, (size_t)n) == 0) {
            Py_INCREF(o);
            return o;
        }
    }
    PyObject *o = PyBytes_FromStringAndSize(s, n);
    if (o == NULL)
        return NULL;
    int k = cache_next[i];
    cache_next[i] = (unsigned char)((k + 1) % CACHED);
    Py_XSETREF(c[k], o);
    Py_INCREF(o);
    return o;
}

int
wanted_index(long long t)
{
    for (int i = 0; i < n_wanted; i++)
        if (wanted[i] == t)
            return i;
    return -1;
}

static int
tag_index(long long t)
{
    if (t >= 0 && t < TABLE)
        return index_of[t];
    for (int i = 0; i < n_wanted; i++)
        if (wanted[i] == t)
            return i;
    return -1;
}

static int
tag_is_length(long long t)
{
    if (t >= 0 && t < TABLE)
        return is_length[t];
    for (int i = 0; i < n_big_length; i++)
        if (big_length[i] == t)
            return 1;
    return 0;
}

static PyObject *
configure(PyObject *self, PyObject *args)
{
    PyObject *w, *l, *r;
    if (!PyArg_ParseTuple(args, "OOO", &w, &l, &r))
        return NULL;
    PyObject *wf = PySequence_Fast(w, "wanted: a sequence");
    if (wf == NULL)
        return NULL;
    Py_ssize_t n = PySequence_Fast_GET_SIZE(wf);
    if (n > MAX_WANTED || n > 127) {
        Py_DECREF(wf);
        PyErr_SetString(PyExc_ValueError, "too many wanted tags");
        return NULL;
    }
    memset(index_of, -1, sizeof index_of);
    memset(is_length, 0, sizeof is_length);
    n_big_length = 0;
    msg_type_index = -1;
    for (Py_ssize_t i = 0; i < n; i++) {
        long long t = PyLong_AsLongLong(PySequence_Fast_GET_ITEM(wf, i));
        if (t == -1 && PyErr_Occurred()) {
            Py_DECREF(wf);
            return NULL;
        }
        wanted[i] = t;
        if (t >= 0 && t < TABLE && index_of[t] < 0)
            index_of[t] = (signed char)i;
        if (t == 35)
            msg_type_index = (int)i;
    }
    n_wanted = (int)n;
    Py_DECREF(wf);
    PyObject *lf = PySequence_Fast(l, "length_tags: a sequence");
    if (lf == NULL)
        return NULL;
    for (Py_ssize_t i = 0; i < PySequence_Fast_GET_SIZE(lf); i++) {
        long long t = PyLong_AsLongLong(PySequence_Fast_GET_ITEM(lf, i));
        if (t == -1 && PyErr_Occurred()) {
            Py_DECREF(lf);
            return NULL;
        }
        if (t >= 0 && t < TABLE)
            is_length[t] = 1;
        else if (n_big_length < 64)
            big_length[n_big_length++] = t;
    }
    Py_DECREF(lf);
    for (int i = 0; i < MAX_WANTED; i++) {
        repeated[i] = 0;
        for (int k = 0; k < CACHED; k++)
            Py_CLEAR(cache[i][k]);
        cache_next[i] = 0;
    }
    PyObject *rf = PySequence_Fast(r, "repeated: a sequence");
    if (rf == NULL)
        return NULL;
    for (Py_ssize_t i = 0; i < PySequence_Fast_GET_SIZE(rf); i++) {
        long k = PyLong_AsLong(PySequence_Fast_GET_ITEM(rf, i));
        if (k == -1 && PyErr_Occurred()) {
            Py_DECREF(rf);
            return NULL;
        }
        if (k >= 0 && k < n_wanted)
            repeated[k] = 1;
    }
    Py_DECREF(rf);
    if (engine_fields() < 0)
        return NULL;
    Py_RETURN_NONE;
}

/* the scan of fields(): 1 and the first occurrence of each wanted field (start -1: absent)
 * for a clean message that has a MsgType; 0 for anything else */
int
scan_clean(const char *s, Py_ssize_t n, Py_ssize_t *start, Py_ssize_t *len)
{
    if (n == 0 || s[n - 1] != '\x01')
        return 0;
    for (int i = 0; i < n_wanted; i++)
        start[i] = -1;
    Py_ssize_t p = 0;
    while (p < n) {
        Py_ssize_t q = p;
        int neg = 0;
        if (s[q] == '-') {
            neg = 1;
            q++;
        }
        Py_ssize_t d0 = q;
        long long t = 0;
        while (q < n && s[q] >= '0' && s[q] <= '9' && q - p < 17) {
            t = t * 10 + (s[q] - '0');
            q++;
        }
        if (q == d0 || q - p > 16 || q >= n || s[q] != '=')
            return 0;
        if (neg)
            t = -t;
        q++;
        const char *e = memchr(s + q, '\x01', (size_t)(n - q));  /* found: s[n-1] is SOH */
        Py_ssize_t end = e - s;
        if (tag_is_length(t))
            return 0;
        int i = tag_index(t);
        if (i >= 0 && start[i] < 0) {
            start[i] = q;
            len[i] = end - q;
        }
        p = end + 1;
    }
    return start[msg_type_index] >= 0;
}

static PyObject *
fields(PyObject *self, PyObject *raw)
{
    if (!PyBytes_Check(raw)) {
        PyErr_SetString(PyExc_TypeError, "fields() takes bytes");
        return NULL;
    }
    if (n_wanted == 0 || msg_type_index < 0) {
        PyErr_SetString(PyExc_RuntimeError, "configure() first");
        return NULL;
    }
    const char *s = PyBytes_AS_STRING(raw);
    Py_ssize_t start[MAX_WANTED], len[MAX_WANTED];
    if (!scan_clean(s, PyBytes_GET_SIZE(raw), start, len))
        Py_RETURN_NONE;
    PyObject *out = PyTuple_New(n_wanted);
    if (out == NULL)
        return NULL;
    for (int i = 0; i < n_wanted; i++) {
        PyObject *v;
        if (start[i] < 0) {
            v = Py_None;
            Py_INCREF(v);
        }
        else {
            v = value_of(i, s + start[i], len[i]);
            if (v == NULL) {
                Py_DECREF(out);
                return NULL;
            }
        }
        PyTuple_SET_ITEM(out, i, v);
    }
    return out;
}

/* " : " at 17..37 of the line [a, b), '-' at 8 and ':' at 11: the offset of " : ", else -1 */
static Py_ssize_t
stamp_end(const char *a, Py_ssize_t linelen)
{
    Py_ssize_t lim = linelen < 40 ? linelen : 40;
    for (Py_ssize_t i = 17; i + 3 <= lim; i++) {
        if (a[i] == ' ' && a[i + 1] == ':' && a[i + 2] == ' ') {
            if (a[8] == '-' && a[11] == ':')
                return i;
            return -1;
        }
    }
    return -1;
}

static int
is_blank(const char *a, Py_ssize_t n)
{
    for (Py_ssize_t i = 0; i < n; i++) {
        char c = a[i];
        if (!(c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\x0b' || c == '\x0c'))
            return 0;
    }
    return 1;
}

/* --- Batch: the messages of one chunk of a file log --------------------------------------- */

static void
batch_dealloc(Batch *b)
{
    Py_XDECREF(b->buf);
    Py_XDECREF(b->origin);
    PyMem_Free(b->pos);
    PyMem_Free(b->line);
    Py_TYPE(b)->tp_free((PyObject *)b);
}

static Py_ssize_t
batch_len(Batch *b)
{
    return b->count;
}

/* the record (stamp, raw, line, origin) of message i */
PyObject *
batch_record(Batch *b, Py_ssize_t i)
{
    const char *s = PyByteArray_AS_STRING(b->buf);
    Py_ssize_t *p = b->pos + 4 * i;
    if (p[2] + p[3] > PyByteArray_GET_SIZE(b->buf)) {
        PyErr_SetString(PyExc_RuntimeError, "a batch read after the next one");
        return NULL;
    }
    PyObject *stamp = PyBytes_FromStringAndSize(s + p[0], p[1]);
    PyObject *raw = PyBytes_FromStringAndSize(s + p[2], p[3]);
    PyObject *line = PyLong_FromLongLong(b->line[i]);
    if (stamp == NULL || raw == NULL || line == NULL) {
        Py_XDECREF(stamp);
        Py_XDECREF(raw);
        Py_XDECREF(line);
        return NULL;
    }
    PyObject *rec = PyTuple_New(4);
    if (rec == NULL) {
        Py_DECREF(stamp);
        Py_DECREF(raw);
        Py_DECREF(line);
        return NULL;
    }
    Py_INCREF(b->origin);
    PyTuple_SET_ITEM(rec, 0, stamp);
    PyTuple_SET_ITEM(rec, 1, raw);
    PyTuple_SET_ITEM(rec, 2, line);
    PyTuple_SET_ITEM(rec, 3, b->origin);
    return rec;
}

static PyObject *
batch_records(Batch *b, PyObject *unused)
{
    PyObject *out = PyList_New(b->count);
    if (out == NULL)
        return NULL;
    for (Py_ssize_t i = 0; i < b->count; i++) {
        PyObject *r = batch_record(b, i);
        if (r == NULL) {
            Py_DECREF(out);
            return NULL;
        }
        PyList_SET_ITEM(out, i, r);
    }
    return out;
}

static PyObject *
batch_last_stamp(Batch *b, PyObject *unused)
{
    if (b->count == 0)
        return PyBytes_FromStringAndSize("", 0);
    Py_ssize_t *p = b->pos + 4 * (b->count - 1);
    if (p[0] + p[1] > PyByteArray_GET_SIZE(b->buf)) {
        PyErr_SetString(PyExc_RuntimeError, "a batch read after the next one");
        return NULL;
    }
    return PyBytes_FromStringAndSize(PyByteArray_AS_STRING(b->buf) + p[0], p[1]);
}

static PyMethodDef batch_methods[] = {
    {"records", (PyCFunction)batch_records, METH_NOARGS,
     "records() -> the (stamp, raw, line, origin) tuples of its messages"},
    {"last_stamp", (PyCFunction)batch_last_stamp, METH_NOARGS,
     "last_stamp() -> the stamp of its last message (b\"\" when it has none)"},
    {NULL, NULL, 0, NULL},
};

static PySequenceMethods batch_as_sequence = {
    .sq_length = (lenfunc)batch_len,
};

PyTypeObject BatchType = {
    PyVarObject_HEAD_INIT(NULL, 0)
    .tp_name = "gateway.audit._cscan.Batch",
    .tp_doc = "The messages of one chunk of a file log (filelog_batch).",
    .tp_basicsize = sizeof(Batch),
    .tp_flags = Py_TPFLAGS_DEFAULT,
    .tp_dealloc = (destructor)batch_dealloc,
    .tp_methods = batch_methods,
    .tp_as_sequence = &batch_as_sequence,
};

static int
emit(Batch *b, const char *s, Py_ssize_t line_start, Py_ssize_t sep, Py_ssize_t end,
     long long number)
{
    /* the message runs from sep + 3 to end (continuation lines included); one line end off */
    Py_ssize_t a = sep + 3;
    if (end > a && s[end - 1] == '\n') {
        end--;
        if (end > a && s[end - 1] == '\r')
            end--;
    }
    if (end < a)
        end = a;
    if (b->count == b->cap) {
        Py_ssize_t cap = b->cap ? b->cap * 2 : 1024;
        Py_ssize_t *pos = PyMem_Realloc(b->pos, (size_t)cap * 4 * sizeof(Py_ssize_t));
        if (pos == NULL) {
            PyErr_NoMemory();
            return -1;
        }
        b->pos = pos;
        long long *line = PyMem_Realloc(b->line, (size_t)cap * sizeof(long long));
        if (line == NULL) {
            PyErr_NoMemory();
            return -1;
        }
        b->line = line;
        b->cap = cap;
    }
    Py_ssize_t *p = b->pos + 4 * b->count;
    p[0] = line_start;
    p[1] = sep - line_start;
    p[2] = a;
    p[3] = end - a;
    b->line[b->count++] = number;
    return 0;
}

static PyObject *
filelog_batch(PyObject *self, PyObject *args)
{
    PyObject *buf;
    Py_ssize_t n;
    int final;
    long long number;
    PyObject *origin;
    if (!PyArg_ParseTuple(args, "YnpLO", &buf, &n, &final, &number, &origin))
        return NULL;
    if (n < 0 || n > PyByteArray_GET_SIZE(buf)) {
        PyErr_SetString(PyExc_ValueError, "filelog_batch: n is not within buf");
        return NULL;
    }
    const char *s = PyByteArray_AS_STRING(buf);
    Batch *records = PyObject_New(Batch, &BatchType);
    if (records == NULL)
        return NULL;
    Py_INCREF(buf);
    records->buf = buf;
    Py_INCREF(origin);
    records->origin = origin;
    records->count = records->cap = 0;
    records->pos = NULL;
    records->line = NULL;
    Py_ssize_t p = 0;
    Py_ssize_t msg_line = -1, msg_sep = 0;  /* the message being read: its line's start */
    long long msg_number = 0, before_msg = number;
    long long bad = 0;
    Py_ssize_t consumed = 0;
    while (p < n) {
        const char *nl = memchr(s + p, '\n', (size_t)(n - p));
        Py_ssize_t next;
        if (nl == NULL) {
            if (!final)
                break;  /* a line without its newline yet */
            next = n;
        }
        else
            next = nl - s + 1;
        Py_ssize_t sep = stamp_end(s + p, next - p);
        if (sep >= 0) {
            if (msg_line >= 0 && emit(records, s, msg_line, msg_sep, p, msg_number) < 0)
                goto error;
            msg_line = p;
            msg_sep = p + sep;
            before_msg = number;
            msg_number = ++number;
        }
        else if (msg_line < 0) {
            if (!is_blank(s + p, next - p)) {
                bad = number + 1;
                consumed = p;
                goto done;
            }
            number++;
        }
        else
            number++;
        p = next;
    }
    if (msg_line >= 0) {
        if (final) {
            if (emit(records, s, msg_line, msg_sep, p, msg_number) < 0)
                goto error;
            consumed = p;
        }
        else {
            consumed = msg_line;  /* it may go on in the next chunk */
            number = before_msg;
        }
    }
    else
        consumed = p;
done:
    return Py_BuildValue("(NnLL)", records, consumed, number, bad);
error:
    Py_DECREF(records);
    return NULL;
}

static PyMethodDef methods[] = {
    {"configure", configure, METH_VARARGS, "configure(wanted, length_tags, repeated)"},
    {"fields", fields, METH_O, "fields(raw) -> tuple | None"},
    {"filelog_batch", filelog_batch, METH_VARARGS,
     "filelog_batch(buf, n, final, number, origin) -> (batch, consumed, number, bad)"},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef module = {
    PyModuleDef_HEAD_INIT, "_cscan",
    "The audit's read-and-scan loop in C (see gateway/audit/native.py).", -1, methods,
};

PyMODINIT_FUNC
PyInit__cscan(void)
{
    memset(index_of, -1, sizeof index_of);
    if (PyType_Ready(&BatchType) < 0 || PyType_Ready(&EngineType) < 0
            || PyType_Ready(&BookType) < 0)
        return NULL;
    PyObject *m = PyModule_Create(&module);
    if (m == NULL)
        return NULL;
    if (PyModule_AddObjectRef(m, "Batch", (PyObject *)&BatchType) < 0
            || PyModule_AddObjectRef(m, "Engine", (PyObject *)&EngineType) < 0
            || PyModule_AddObjectRef(m, "Book", (PyObject *)&BookType) < 0) {
        Py_DECREF(m);
        return NULL;
    }
    return m;
}
