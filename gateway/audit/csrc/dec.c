/* FIX decimals as Python's Decimal holds them: a coefficient and an exponent, the value
 * c * 10**e exactly (gateway/audit/chains.py's arithmetic on CumQty, LastQty, AvgPx ...).
 *
 * Decimal's + - * are exact while the exact result has at most 28 digits (the context's
 * precision), with the exponent min(e1, e2) for + and -, e1 + e2 for *; past 28 digits it
 * rounds. Each operation here fails (returns 0) where Decimal would round or where its own
 * 128 bits would not hold the work: the caller then declines the message, and Python does it.
 * So every value here is the Decimal Python would have, coefficient and exponent alike (what
 * str() of it shows, when an order is handed to Python).
 *
 * dec_parse takes only the plain form `digits[.digits]` (no sign, exponent, spaces or
 * underscores, at most 27 digits): the text Decimal() reads the same way. Anything else fails,
 * and the message is Python's (Decimal reads more forms, and says which are not numbers).
 */
#include "cscan.h"

#define MAX_DIGITS 27

static i128 pow10_[39];
static int ready = 0;

static void
init(void)
{
    pow10_[0] = 1;
    for (int i = 1; i < 39; i++)
        pow10_[i] = pow10_[i - 1] * 10;
    ready = 1;
}

static i128
abs128(i128 x)
{
    return x < 0 ? -x : x;
}

/* |c| < 10**28: Decimal keeps it exactly */
static int
fits(i128 c)
{
    return abs128(c) < pow10_[28];
}

int
dec_parse(const char *s, Py_ssize_t n, Dec *out)
{
    if (!ready)
        init();
    i128 c = 0;
    int digits = 0, frac = 0, dot = 0;
    for (Py_ssize_t i = 0; i < n; i++) {
        char ch = s[i];
        if (ch >= '0' && ch <= '9') {
            if (++digits > MAX_DIGITS)
                return 0;
            c = c * 10 + (ch - '0');
            if (dot)
                frac++;
        }
        else if (ch == '.' && !dot)
            dot = 1;
        else
            return 0;
    }
    if (digits == 0)
        return 0;
    out->c = c;
    out->e = -frac;
    return 1;
}

/* a and b with the smaller exponent; 0 when a coefficient would not fit */
static int
align(Dec *a, Dec *b)
{
    if (!ready)
        init();
    if (a->e == b->e)
        return 1;
    Dec *hi = a->e > b->e ? a : b;
    int lo = a->e > b->e ? b->e : a->e;
    int d = hi->e - lo;
    if (d > 37 || abs128(hi->c) > pow10_[37] / pow10_[d])
        return 0;
    hi->c *= pow10_[d];
    hi->e = lo;
    return 1;
}

int
dec_add(Dec a, Dec b, Dec *out)
{
    if (!align(&a, &b) || !fits(a.c) || !fits(b.c))
        return 0;
    out->c = a.c + b.c;
    out->e = a.e;
    return fits(out->c);
}

int
dec_sub(Dec a, Dec b, Dec *out)
{
    b.c = -b.c;
    return dec_add(a, b, out);
}

int
dec_mul(Dec a, Dec b, Dec *out)
{
    if (!ready)
        init();
    i128 x = abs128(a.c), y = abs128(b.c);
    if (x != 0 && y > (pow10_[28] - 1) / x)
        return 0;
    out->c = a.c * b.c;
    out->e = a.e + b.e;
    return 1;
}

int
dec_cmp(Dec a, Dec b, int *out)
{
    if (!align(&a, &b))
        return 0;
    *out = a.c < b.c ? -1 : a.c > b.c ? 1 : 0;
    return 1;
}

int
dec_sign(Dec a)
{
    return a.c < 0 ? -1 : a.c > 0 ? 1 : 0;
}

/* "<coefficient>E<exponent>": the text Decimal() reads back as this very coefficient and
 * exponent */
PyObject *
dec_text(Dec a)
{
    char buf[64];
    char *p = buf + sizeof buf;
    *--p = '\0';
    int e = a.e;
    char eb[16];
    snprintf(eb, sizeof eb, "E%d", e);
    size_t el = strlen(eb);
    p -= el;
    memcpy(p, eb, el);
    i128 c = a.c;
    int neg = c < 0;
    if (neg)
        c = -c;
    do {
        *--p = (char)('0' + (int)(c % 10));
        c /= 10;
    } while (c);
    if (neg)
        *--p = '-';
    return PyUnicode_FromString(p);
}
