/* The audit's read-and-scan loop in C: file-log lines into records, and the wanted fields of a
 * message (gateway/audit/native.py loads it; gateway/audit/scan.py and sources.py hold the
 * pure-Python versions these must equal, and tests/audit/test_native.py holds them to it).
 *
 * fields(raw) -> tuple | None
 *     The fields of scan.WANTED (first occurrence of each tag, as bytes; None where absent)
 *     of a *clean* message: every field `tag=value<SOH>`, the tag `-?[0-9]{1,16}` (what
 *     codec.split_fields accepts), no length-prefixed DATA field. None for anything else
 *     (the caller then runs the Python scanner, which knows the hard cases).
 *
 * filelog_chunk(buf, final, number, origin) -> (records, consumed, number, bad)
 *     `<timestamp> : <message>` lines of buf, as sources._filelog_fast reads them: a line whose
 *     " : " starts at 17..37 and that has '-' at 8 and ':' at 11 starts a message; any other
 *     line continues the message before it (blank lines before the first message are
 *     skipped). records: (stamp, raw, line, origin) tuples of the messages complete in buf;
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
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <string.h>

#define MAX_WANTED 64
#define TABLE 16384

static int n_wanted = 0;
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
    Py_RETURN_NONE;
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
    Py_ssize_t n = PyBytes_GET_SIZE(raw);
    if (n == 0 || s[n - 1] != '\x01')
        Py_RETURN_NONE;
    Py_ssize_t start[MAX_WANTED], len[MAX_WANTED];
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
            Py_RETURN_NONE;
        if (neg)
            t = -t;
        q++;
        const char *e = memchr(s + q, '\x01', (size_t)(n - q));  /* found: s[n-1] is SOH */
        Py_ssize_t end = e - s;
        if (tag_is_length(t))
            Py_RETURN_NONE;
        int i = tag_index(t);
        if (i >= 0 && start[i] < 0) {
            start[i] = q;
            len[i] = end - q;
        }
        p = end + 1;
    }
    if (start[msg_type_index] < 0)
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

static int
emit(PyObject *records, const char *s, Py_ssize_t line_start, Py_ssize_t sep, Py_ssize_t end,
     long long number, PyObject *origin)
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
    PyObject *stamp = PyBytes_FromStringAndSize(s + line_start, sep - line_start);
    PyObject *raw = PyBytes_FromStringAndSize(s + a, end - a);
    PyObject *line = PyLong_FromLongLong(number);
    if (stamp == NULL || raw == NULL || line == NULL) {
        Py_XDECREF(stamp);
        Py_XDECREF(raw);
        Py_XDECREF(line);
        return -1;
    }
    Py_INCREF(origin);
    PyObject *rec = PyTuple_New(4);
    if (rec == NULL) {
        Py_DECREF(stamp);
        Py_DECREF(raw);
        Py_DECREF(line);
        Py_DECREF(origin);
        return -1;
    }
    PyTuple_SET_ITEM(rec, 0, stamp);
    PyTuple_SET_ITEM(rec, 1, raw);
    PyTuple_SET_ITEM(rec, 2, line);
    PyTuple_SET_ITEM(rec, 3, origin);
    int rc = PyList_Append(records, rec);
    Py_DECREF(rec);
    return rc;
}

static PyObject *
filelog_chunk(PyObject *self, PyObject *args)
{
    Py_buffer view;
    int final;
    long long number;
    PyObject *origin;
    if (!PyArg_ParseTuple(args, "y*pLO", &view, &final, &number, &origin))
        return NULL;
    const char *s = view.buf;
    Py_ssize_t n = view.len;
    PyObject *records = PyList_New(0);
    if (records == NULL) {
        PyBuffer_Release(&view);
        return NULL;
    }
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
            if (msg_line >= 0 && emit(records, s, msg_line, msg_sep, p, msg_number, origin) < 0)
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
            if (emit(records, s, msg_line, msg_sep, p, msg_number, origin) < 0)
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
    PyBuffer_Release(&view);
    return Py_BuildValue("(NnLL)", records, consumed, number, bad);
error:
    PyBuffer_Release(&view);
    Py_DECREF(records);
    return NULL;
}

static PyMethodDef methods[] = {
    {"configure", configure, METH_VARARGS, "configure(wanted, length_tags, repeated)"},
    {"fields", fields, METH_O, "fields(raw) -> tuple | None"},
    {"filelog_chunk", filelog_chunk, METH_VARARGS,
     "filelog_chunk(buf, final, number, origin) -> (records, consumed, number, bad)"},
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
    return PyModule_Create(&module);
}
