/* The per-node read of the table build in C (optional: nodeselect.table._build falls back to
 * its pure-Python loop when this module is missing or NODESELECT_PURE_PYTHON=1).
 *
 * read_chunk(nodes, block, flags, image_bit, agree, luts, names, operators, start, slots,
 * facts, uuids, ints, times) reads one chunk of nodes exactly as
 * nodeselect.table._build._read_chunk does, field for field and in the same order:
 *
 *   - the twelve numbers of each node straight into `block` (a writable float64 buffer of
 *     len(nodes) * 12 values; None -> NaN, int -> double correctly rounded as float(int));
 *   - suspended/deleted flags into `flags` (a writable 2 * len(nodes) byte buffer);
 *   - image tags coded against the dict `image_bit` (grown as the Python loop grows it);
 *   - the GPU numbers (free, max, telemetry load, telemetry free, telemetry total) as one
 *     bytes object of 5 doubles per GPU, GPU names as a list; telemetry is matched by name,
 *     calling `agree(a, b)` (gpu_names_agree) only when names differ;
 *
 * and codes the strings as it reads them, while their objects are in cache (a later pass over
 * a chunk's strings met each one cold again), into the rows of `ints` (int64, 7 x n) and
 * `times` (float64, 2 x n):
 *
 *   - the uuid's UTF-8 bytes appended to one bytes object, its length in ints[INT_UUID_LEN],
 *     the uuid added to the set `uuids`;
 *   - name and operator: names/operators.setdefault(value, start + i) (the position where
 *     the value first appeared); a new name's UTF-8 bytes and length are collected too;
 *   - OS name, architecture, driver version, GPU names: luts[k].get(value, -1) (the Python
 *     side codes the values a dict lacks, in order of first appearance);
 *   - the facts tuple: its slot in `slots`, or -1 - its first row in the chunk (`facts`,
 *     grown), for the Python side to give new facts their slots;
 *   - last_seen_at and (where timestamp_ms is missing) created_at as Unix seconds, when
 *     they have the form YYYY-MM-DDTHH:MM:SSZ (with or without a fraction) of
 *     parse_timestamps_to_epoch_s's vectorized path, with that path's value; any other value
 *     but None is listed as (row, i, value) for the Python side to parse.
 *
 * It returns the remaining columns (OS, architecture and driver values, image words, GPU
 * names, GPU numbers, GPU codes, uuid bytes, new names' bytes and lengths, the odd
 * timestamps, the count of numeric strings). Anything unusual (a number of a type other
 * than int/float/None, an int beyond a double, a core sum beyond int64, a uuid or new name
 * that is not a str, any exception) raises Fallback, and the Python builder redoes the chunk:
 * this module never decides an odd case on its own (what it already added to the dicts and
 * the set is what the Python loop adds for the same nodes, at the same positions). Only the
 * Python C API is used (no NumPy headers); GCC or Clang is needed (statement expressions,
 * __builtin_add_overflow): with another compiler the build fails and the
 * install stays pure Python (hatch_build.py).
 *
 * Also here: codes(lut, values, out) and positions(first, values, start, out), the per-value
 * dict loops of coding a column of strings (_build._lookup and _build._positions: the chunks
 * the Python loop reads, and the timestamps it parses); and three array kernels that run
 * with the GIL released (nodeselect.table.repeat, segment_counts and reaching):
 * repeat(values, counts, out, itemsize), numpy.repeat's copy; segment_counts(mask, offsets,
 * out), the True values per CSR segment; reaching(lower, upper, pos, bounds, k, out, direct),
 * the pairs of a batch that can be in their job's top k.
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <structmember.h>
#include <math.h>
#include <stdint.h>
#include <string.h>

enum { REP, MS, CPU, RF, RT, DF, DT, SAV, SMX, WHOLE, CORES, NG, NUMS };
enum { COL_OS, COL_ARCH, COL_DRIVER, COL_WORDS, COL_GNAME, NCOLS };

static PyObject *Fallback;
static PyObject *empty_str;

#define NAMES(X) \
    X(lean) X(facts) X(cpus) X(num_cores) X(latest_hardware_event) X(timestamp_ms) \
    X(created_at) X(metadata) X(cpu) X(average) X(ram) X(free) X(total) X(gpu) X(gpus) \
    X(rams) X(memory_gb_available) X(memory_gb_max) X(numeric_strings) X(hard_drives) \
    X(available_capacity_gb) X(max_capacity_gb) X(current_software) X(current_hardware) \
    X(operating_system) X(nvidia_driver) X(version) X(cached_image_tags) X(name) \
    X(architecture) X(vram_gb_available) X(vram_gb_max) X(load) X(vram) X(reputation) \
    X(uuid) X(operator_account_uuid) X(last_seen_at) X(suspended_at) X(deleted_at) \
    X(status) X(continent) X(country) X(subdivision) X(compliance_tags)

#define DECLARE(n) static PyObject *s_##n;
NAMES(DECLARE)
#undef DECLARE

/* Slot reads: an attribute that is a member descriptor of a type with the generic getattr
 * (msgspec structs, attrs slotted classes) is read at its offset, as PyObject_GetAttr would
 * find it, without the lookup. Cached per (name, type, the type's version tag); the cached
 * types are kept alive, so a type's address is never another's. */
#define CACHE_WAYS 4
typedef struct {
    PyObject *name;
    struct {
        PyTypeObject *type;
        unsigned int version;
        Py_ssize_t offset;
        int nullable; /* T_OBJECT: NULL reads as None; T_OBJECT_EX: NULL -> AttributeError */
    } way[CACHE_WAYS];
    int next;
} SlotCache;

/* The cache of one read site (each site mostly meets one type: a hit on the first way). */
#define A(n)                                  \
    ({                                        \
        static SlotCache site_;               \
        if (site_.name == NULL)               \
            site_.name = s_##n;               \
        &site_;                               \
    })

/* The cached way of `tp` in `c`, filled on a miss; NULL when `tp`'s `name` is no plain slot. */
static int slot_fill(SlotCache *c, PyTypeObject *tp);

static inline int slot_of(SlotCache *c, PyTypeObject *tp) {
    for (int k = 0; k < CACHE_WAYS; k++)
        if (c->way[k].type == tp && c->way[k].version == tp->tp_version_tag)
            return k;
    return slot_fill(c, tp);
}

static int slot_fill(SlotCache *c, PyTypeObject *tp) {
    if (tp->tp_getattro != PyObject_GenericGetAttr)
        return -1;
    PyObject *descr = _PyType_Lookup(tp, c->name); /* borrowed; gives tp a version tag */
    if (descr == NULL || !Py_IS_TYPE(descr, &PyMemberDescr_Type) ||
        !(tp->tp_flags & Py_TPFLAGS_VALID_VERSION_TAG))
        return -1;
    PyMemberDef *m = ((PyMemberDescrObject *)descr)->d_member;
    if ((m->type != T_OBJECT_EX && m->type != T_OBJECT) || (m->flags & PY_AUDIT_READ))
        return -1;
    /* the descriptor must be for this layout: tp is (a subtype of) its owner */
    if (!PyType_IsSubtype(tp, PyDescr_TYPE(descr)))
        return -1;
    int k = c->next;
    c->next = (k + 1) % CACHE_WAYS;
    Py_XDECREF(c->way[k].type);
    Py_INCREF(tp);
    c->way[k].type = tp;
    c->way[k].version = tp->tp_version_tag;
    c->way[k].offset = m->offset;
    c->way[k].nullable = m->type == T_OBJECT;
    return k;
}

/* obj.<c->name>, a new reference (NULL on error), as PyObject_GetAttr gives it. */
static inline PyObject *getattr_cached(PyObject *obj, SlotCache *c) {
    PyTypeObject *tp = Py_TYPE(obj);
    if (tp->tp_flags & Py_TPFLAGS_VALID_VERSION_TAG) {
        int k = slot_of(c, tp);
        if (k >= 0) {
            PyObject *v = *(PyObject **)((char *)obj + c->way[k].offset);
            if (v == NULL && c->way[k].nullable)
                v = Py_None;
            if (v != NULL) {
                Py_INCREF(v);
                return v;
            }
        }
    }
    return PyObject_GetAttr(obj, c->name);
}

/* Read-ahead: the read is bound by memory latency (each node's objects are met cold), so the
 * objects of the nodes a few ahead are prefetched, one level deeper each step closer. Only
 * object members are followed; a prefetch is a hint and never faults. */
static inline void pf(const void *p) { __builtin_prefetch(p, 1, 3); }

#ifdef Py_RELATIVE_OFFSET /* 3.12+: an offset into the subclass's data, not the object */
#define PF_RELATIVE Py_RELATIVE_OFFSET
#else
#define PF_RELATIVE 0
#endif

/* Runs `body` with `child` bound to each object member (T_OBJECT, T_OBJECT_EX; not NULL) of
 * `obj`'s type and bases: the slots of msgspec structs and attrs classes. */
#define EACH_CHILD(obj, child, body)                                                         \
    do {                                                                                     \
        PyObject *o_ = (obj);                                                                \
        for (PyTypeObject *t_ = Py_TYPE(o_); t_ != NULL && t_ != &PyBaseObject_Type;         \
             t_ = t_->tp_base) {                                                             \
            for (PyMemberDef *m_ = t_->tp_members; m_ != NULL && m_->name != NULL; m_++) {   \
                if ((m_->type != T_OBJECT && m_->type != T_OBJECT_EX) ||                     \
                    (m_->flags & PF_RELATIVE))                                               \
                    continue;                                                                \
                PyObject *child = *(PyObject **)((char *)o_ + m_->offset);                   \
                if (child != NULL) {                                                         \
                    body;                                                                    \
                }                                                                            \
            }                                                                                \
        }                                                                                    \
    } while (0)

/* Levels of a node's objects prefetched (the node; its lean document and facts; their
 * fields) and the nodes between two levels. On the read of 20k simulator nodes (same-run,
 * interleaved): 4-15 % off against none; 5 levels (list items, nested fields) 1-5 % slower
 * than 3 (each level walks the ones above again), 6 levels slower than none; steps of 1 and
 * 4 no better than 2. */
enum { PF_LEVELS = 3, PF_STEP = 2 };

/* Prefetch the objects `depth` levels below `obj` (0: obj itself), walking the levels
 * above, which earlier steps brought in. */
static void prefetch_level(PyObject *obj, int depth) {
    if (depth == 0)
        pf(obj);
    else
        EACH_CHILD(obj, c, prefetch_level(c, depth - 1));
}

/* References owned while a node is read, released together (so no path leaks one). */
typedef struct {
    PyObject **items;
    Py_ssize_t n, cap;
} Held;

static int held_grow(Held *h) {
    {
        Py_ssize_t cap = h->cap ? h->cap * 2 : 64;
        PyObject **items = PyMem_Realloc(h->items, (size_t)cap * sizeof(PyObject *));
        if (items == NULL) {
            PyErr_NoMemory();
            return -1;
        }
        h->items = items;
        h->cap = cap;
    }
    return 0;
}

static inline int held_push(Held *h, PyObject *o) {
    if (h->n == h->cap && held_grow(h) < 0)
        return -1;
    h->items[h->n++] = o;
    return 0;
}

static void held_release(Held *h, Py_ssize_t mark) {
    while (h->n > mark) {
        PyObject *o = h->items[--h->n];
        Py_DECREF(o);
    }
}

/* obj.name as a reference owned by `h` (NULL on error; None is returned without one). */
static inline PyObject *get(Held *h, PyObject *obj, SlotCache *name) {
    PyObject *v = getattr_cached(obj, name);
    if (v == NULL)
        return NULL;
    if (v == Py_None) { /* None outlives every read: no reference need be held */
        Py_DECREF(v);
        return v;
    }
    if (held_push(h, v) < 0) {
        Py_DECREF(v);
        return NULL;
    }
    return v;
}

/* PySequence_Fast(obj) owned by `h`. */
static PyObject *fast(Held *h, PyObject *obj) {
    PyObject *v = PySequence_Fast(obj, "a sequence");
    if (v == NULL)
        return NULL;
    if (held_push(h, v) < 0) {
        Py_DECREF(v);
        return NULL;
    }
    return v;
}

/* A number as np.fromiter(dtype=float64) converts it; -1 for anything but None/int/float. */
static int num(PyObject *v, double *out) {
    if (v == Py_None) {
        *out = NAN;
        return 0;
    }
    if (PyFloat_CheckExact(v)) {
        *out = PyFloat_AS_DOUBLE(v);
        return 0;
    }
    if (PyLong_CheckExact(v)) {
        int overflow;
        long long ll = PyLong_AsLongLongAndOverflow(v, &overflow);
        if (!overflow && !(ll == -1 && PyErr_Occurred())) {
            *out = (double)ll; /* round to nearest even, as float(int) */
            return 0;
        }
        PyErr_Clear();
        double d = PyLong_AsDouble(v);
        if (d == -1.0 && PyErr_Occurred())
            return -1;
        *out = d;
        return 0;
    }
    return -1;
}

/* obj.name as a number in *x: 1, or 0 when it is None (*x untouched), or -1 (not a number:
 * unusual, or an error). */
/* obj.<c->name> read from its slot without a reference (NULL when the attribute is no plain
 * slot of obj's type, or the slot is empty: the caller then takes the general path). Only for
 * a value used at once by code that cannot run Python code (which might drop the last
 * reference to it): the number conversions below. */
static inline PyObject *slot_peek(PyObject *obj, SlotCache *c) {
    PyTypeObject *tp = Py_TYPE(obj);
    if (!(tp->tp_flags & Py_TPFLAGS_VALID_VERSION_TAG))
        return NULL;
    int k = slot_of(c, tp);
    if (k < 0)
        return NULL;
    PyObject *v = *(PyObject **)((char *)obj + c->way[k].offset);
    return v == NULL && c->way[k].nullable ? Py_None : v;
}

static int opt_num(Held *h, PyObject *obj, SlotCache *name, double *x) {
    PyObject *v = slot_peek(obj, name);
    if (v == NULL && (v = get(h, obj, name)) == NULL)
        return -1;
    if (v == Py_None)
        return 0;
    return num(v, x) < 0 ? -1 : 1;
}

/* obj.name as a number (obj must not be None). */
static int num_attr(Held *h, PyObject *obj, SlotCache *name, double *out) {
    PyObject *v = slot_peek(obj, name);
    if (v == NULL && (v = get(h, obj, name)) == NULL)
        return -1;
    return num(v, out);
}

/* Python's truth of v: 1, 0, or -1 with an exception set. */
static int truthy(PyObject *v) { return v == Py_None ? 0 : PyObject_IsTrue(v); }

typedef struct {
    double *data;
    Py_ssize_t n, cap;
} Doubles;

static int doubles_add(Doubles *d, double a, double b, double c, double e, double f) {
    if (d->n + 5 > d->cap) {
        Py_ssize_t cap = d->cap ? d->cap * 2 : 5 * 4096;
        double *data = PyMem_Realloc(d->data, (size_t)cap * sizeof(double));
        if (data == NULL) {
            PyErr_NoMemory();
            return -1;
        }
        d->data = data;
        d->cap = cap;
    }
    double *p = d->data + d->n;
    p[0] = a;
    p[1] = b;
    p[2] = c;
    p[3] = e;
    p[4] = f;
    d->n += 5;
    return 0;
}

/* The image bit of `tag` (1 << position in image_bit, added if new), new reference. */
static PyObject *image_bit_of(PyObject *image_bit, PyObject *tag) {
    PyObject *bit = PyDict_GetItemWithError(image_bit, tag);
    if (bit != NULL) {
        Py_INCREF(bit);
        return bit;
    }
    if (PyErr_Occurred())
        return NULL;
    PyObject *one = PyLong_FromLong(1);
    PyObject *shift = PyLong_FromSsize_t(PyDict_GET_SIZE(image_bit));
    if (one == NULL || shift == NULL) {
        Py_XDECREF(one);
        Py_XDECREF(shift);
        return NULL;
    }
    bit = PyNumber_Lshift(one, shift);
    Py_DECREF(one);
    Py_DECREF(shift);
    if (bit == NULL)
        return NULL;
    if (PyDict_SetItem(image_bit, tag, bit) < 0) {
        Py_DECREF(bit);
        return NULL;
    }
    return bit;
}

/* obj.<attr> as a sequence held by `h` in *seq (PySequence_Fast) with its length in *m, or
 * *m = 0 when the value is falsy (None or empty: the Python loop's `if obj.attr:`). 0, or -1
 * on error. */
static int seq_attr(Held *h, PyObject *obj, SlotCache *attr, PyObject **seq, Py_ssize_t *m) {
    *seq = NULL;
    *m = 0;
    PyObject *v = get(h, obj, attr);
    if (v == NULL)
        return -1;
    int t = truthy(v);
    if (t <= 0)
        return t;
    if ((*seq = fast(h, v)) == NULL)
        return -1;
    *m = PySequence_Fast_GET_SIZE(*seq);
    return 0;
}

/* The first truthy `attr` of the objects that are not None (as `a.x or b.x or c.x` picks it,
 * held by `h`), left in *out; *out is unchanged when none is truthy. 0, or -1 on error. */
static int first_truthy(Held *h, PyObject *objs[3], SlotCache *attr, PyObject **out) {
    for (int j = 0; j < 3; j++) {
        if (objs[j] == Py_None)
            continue;
        PyObject *v = get(h, objs[j], attr);
        if (v == NULL)
            return -1;
        int t = PyObject_IsTrue(v);
        if (t < 0)
            return -1;
        if (t) {
            *out = v;
            return 0;
        }
    }
    return 0;
}

/* A growable buffer of bytes or int64s. */
typedef struct {
    char *data;
    Py_ssize_t n, cap;
} Buf;

static int buf_add(Buf *b, const void *src, Py_ssize_t size) {
    if (size == 0)
        return 0;
    if (b->n + size > b->cap) {
        Py_ssize_t cap = b->cap ? b->cap : 4096;
        while (cap < b->n + size)
            cap *= 2;
        char *data = PyMem_Realloc(b->data, (size_t)cap);
        if (data == NULL) {
            PyErr_NoMemory();
            return -1;
        }
        b->data = data;
        b->cap = cap;
    }
    memcpy(b->data + b->n, src, (size_t)size);
    b->n += size;
    return 0;
}

/* Unix seconds of `s` (ASCII, `len` bytes) in *out when it has the form
 * YYYY-MM-DDTHH:MM:SS[.f...]Z with a valid date and time: the value
 * parse_timestamps_to_epoch_s gives (microseconds, fraction digits past six truncated,
 * int64 microseconds / 1e6, exact while below 2**53). 1, or 0 for any other string (the
 * Python side parses those). */
static int fast_epoch_s(const char *s, Py_ssize_t len, double *out) {
    static const int at[14] = {0, 1, 2, 3, 5, 6, 8, 9, 11, 12, 14, 15, 17, 18};
    long long d[14];
    if (len < 20 || s[4] != '-' || s[7] != '-' || s[10] != 'T' || s[13] != ':' ||
        s[16] != ':' || s[len - 1] != 'Z')
        return 0;
    for (int k = 0; k < 14; k++) {
        int c = s[at[k]] - '0';
        if (c < 0 || c > 9)
            return 0;
        d[k] = c;
    }
    long long micro = 0;
    if (len > 20) { /* ".f...Z": at least one fraction digit */
        if (s[19] != '.' || len < 22)
            return 0;
        int digits = 0;
        for (Py_ssize_t j = 20; j < len - 1; j++) {
            int c = s[j] - '0';
            if (c < 0 || c > 9)
                return 0;
            if (digits < 6) {
                micro = micro * 10 + c;
                digits++;
            }
        }
        for (; digits < 6; digits++)
            micro *= 10;
    }
    long long year = d[0] * 1000 + d[1] * 100 + d[2] * 10 + d[3];
    long long month = d[4] * 10 + d[5], day = d[6] * 10 + d[7];
    long long hour = d[8] * 10 + d[9], minute = d[10] * 10 + d[11], second = d[12] * 10 + d[13];
    static const int mdays[13] = {0, 31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
    int leap = (year % 4 == 0 && year % 100 != 0) || year % 400 == 0;
    if (year < 1 || month < 1 || month > 12 || day < 1 ||
        day > mdays[month] + (month == 2 && leap) || hour > 23 || minute > 59 || second > 59)
        return 0;
    /* days_from_civil (H. Hinnant), as the vectorized path; y >= 0 here */
    long long y = year - (month <= 2);
    long long era = y / 400, yoe = y - era * 400, mp = (month + 9) % 12;
    long long doy = (153 * mp + 2) / 5 + day - 1;
    long long doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    long long days = era * 146097 + doe - 719468;
    long long us = (days * 86400 + hour * 3600 + minute * 60 + second) * 1000000 + micro;
    if (us <= -(1LL << 53) || us >= (1LL << 53))
        return 0;
    *out = (double)us / 1e6;
    return 1;
}

/* Where a chunk's strings are coded as they are read (while their objects are in cache):
 * see read_chunk. */
enum { INT_NAME, INT_OPERATOR, INT_FACTS, INT_UUID_LEN, INT_OS, INT_ARCH, INT_DRIVER, NINTS };
enum { LUT_OS, LUT_ARCH, LUT_DRIVER, LUT_GPU, NLUTS };
typedef struct {
    PyObject *luts[NLUTS];     /* value -> code dicts (read only) */
    PyObject *names, *operators; /* value -> first position dicts (grown) */
    Py_ssize_t start;          /* the chunk's first position */
    PyObject *slots;           /* facts tuple -> the fleet's slot (read only) */
    PyObject *facts;           /* new facts tuple -> first row in the chunk (grown) */
    PyObject *uuids;           /* the set of uuids read (grown) */
    int64_t *ints;             /* NINTS rows of n */
    double *times;             /* 2 rows of n: last_seen_at, created_at (NaN: none/odd) */
    Buf uuid_bytes, gpu_codes, name_bytes, name_lengths;
    PyObject *odd;             /* (row, i, value) of the timestamps left to Python */
} Ctx;

/* ints[row][i] = lut.get(v, -1) */
static int code_of(Ctx *x, int lut, int row, Py_ssize_t n, Py_ssize_t i, PyObject *v) {
    PyObject *c = PyDict_GetItemWithError(x->luts[lut], v); /* borrowed */
    long long code = -1;
    if (c == NULL) {
        if (PyErr_Occurred())
            return -1;
    } else if ((code = PyLong_AsLongLong(c)) == -1 && PyErr_Occurred()) {
        return -1;
    }
    x->ints[row * n + i] = code;
    return 0;
}

/* ints[row][i] = first.setdefault(v, pos) */
static int first_of(Ctx *x, PyObject *first, int row, Py_ssize_t n, Py_ssize_t i, PyObject *v,
                    Py_ssize_t pos) {
    PyObject *p = PyLong_FromSsize_t(pos);
    if (p == NULL)
        return -1;
    PyObject *c = PyDict_SetDefault(first, v, p); /* borrowed */
    Py_DECREF(p);
    long long at;
    if (c == NULL || ((at = PyLong_AsLongLong(c)) == -1 && PyErr_Occurred()))
        return -1;
    x->ints[row * n + i] = at;
    return 0;
}

/* The name's first position, as first_of; a name seen for the first time also has its
 * UTF-8 bytes and their length added to name_bytes/name_lengths (the names' vocabulary). */
static int new_name(Ctx *x, Py_ssize_t n, Py_ssize_t i, PyObject *v) {
    Py_ssize_t size = PyDict_GET_SIZE(x->names);
    if (first_of(x, x->names, INT_NAME, n, i, v, x->start + i) < 0)
        return -1;
    if (PyDict_GET_SIZE(x->names) == size)
        return 0;
    Py_ssize_t len;
    const char *utf8;
    if (!PyUnicode_CheckExact(v) || (utf8 = PyUnicode_AsUTF8AndSize(v, &len)) == NULL)
        return -1;
    int64_t len64 = len;
    return buf_add(&x->name_bytes, utf8, len) < 0 ||
                   buf_add(&x->name_lengths, &len64, sizeof len64) < 0
               ? -1
               : 0;
}

/* times[row][i]: v parsed, NaN for None, NaN and (row, i, v) noted in x->odd otherwise. */
static int time_of(Ctx *x, int row, Py_ssize_t n, Py_ssize_t i, PyObject *v) {
    double *out = x->times + row * n + i;
    *out = NAN;
    if (v == Py_None)
        return 0;
    if (PyUnicode_CheckExact(v) && PyUnicode_IS_ASCII(v) &&
        fast_epoch_s((const char *)PyUnicode_DATA(v), PyUnicode_GET_LENGTH(v), out))
        return 0;
    PyObject *t = Py_BuildValue("(inO)", row, i, v);
    if (t == NULL)
        return -1;
    int rc = PyList_Append(x->odd, t);
    Py_DECREF(t);
    return rc;
}

/* Read one node (row i); 0 or -1 (exception set: the caller turns it into Fallback). */
static int read_node(Held *h, PyObject *node, Py_ssize_t i, double *row, char *flags,
                     Py_ssize_t n, PyObject **cols, Doubles *g, PyObject *image_bit,
                     PyObject *agree, long long *numeric_strings, Ctx *x) {
    PyObject *d = get(h, node, A(lean));
    PyObject *f = d ? get(h, node, A(facts)) : NULL;
    if (f == NULL)
        return -1;

    /* CPU cores */
    long long k = 0;
    PyObject *seq;
    Py_ssize_t m;
    if (seq_attr(h, d, A(cpus), &seq, &m) < 0)
        return -1;
    if (m) {
        for (Py_ssize_t j = 0; j < m; j++) {
            if (PySequence_Fast_GET_SIZE(seq) != m) /* resized by a callback: unusual */
                return -1;
            PyObject *c = get(h, PySequence_Fast_GET_ITEM(seq, j), A(num_cores));
            if (c == NULL)
                return -1;
            if (c == Py_None)
                continue;
            if (!PyLong_CheckExact(c))
                return -1;
            int overflow = 0;
            long long v = PyLong_AsLongLongAndOverflow(c, &overflow);
            if (overflow || (v == -1 && PyErr_Occurred()))
                return -1;
            if (__builtin_add_overflow(k, v, &k))
                return -1;
        }
    }

    /* the latest hardware event */
    double ms = NAN, cpu_a = NAN, rf = NAN, rt = NAN;
    PyObject *created = Py_None, *tg = Py_None;
    PyObject *ev = get(h, d, A(latest_hardware_event));
    if (ev == NULL)
        return -1;
    if (ev != Py_None) {
        if (num_attr(h, ev, A(timestamp_ms), &ms) < 0)
            return -1;
        if ((created = get(h, ev, A(created_at))) == NULL)
            return -1;
        PyObject *md = get(h, ev, A(metadata));
        if (md == NULL)
            return -1;
        if (md != Py_None) {
            PyObject *cm = get(h, md, A(cpu));
            if (cm == NULL)
                return -1;
            if (cm != Py_None && num_attr(h, cm, A(average), &cpu_a) < 0)
                return -1;
            PyObject *r = get(h, md, A(ram));
            if (r == NULL)
                return -1;
            if (r != Py_None &&
                (num_attr(h, r, A(free), &rf) < 0 || num_attr(h, r, A(total), &rt) < 0))
                return -1;
            PyObject *gm = get(h, md, A(gpu));
            if (gm == NULL)
                return -1;
            if (gm != Py_None && (tg = get(h, gm, A(gpus))) == NULL)
                return -1;
        }
    }

    /* RAM sticks: sum of available and max (None skipped), NaN when none */
    double s_av = NAN, s_mx = NAN;
    int whole = 1;
    if (seq_attr(h, d, A(rams), &seq, &m) < 0)
        return -1;
    if (m) {
        for (Py_ssize_t j = 0; j < m; j++) {
            if (PySequence_Fast_GET_SIZE(seq) != m) /* resized by a callback: unusual */
                return -1;
            PyObject *rr = PySequence_Fast_GET_ITEM(seq, j);
            double x;
            int has = opt_num(h, rr, A(memory_gb_available), &x);
            if (has < 0)
                return -1;
            if (has)
                s_av = (isnan(s_av) ? 0.0 : s_av) + x; /* 0.0 + x, as Python's */
            if ((has = opt_num(h, rr, A(memory_gb_max), &x)) < 0)
                return -1;
            if (has)
                s_mx = (isnan(s_mx) ? 0.0 : s_mx) + x;
            else
                whole = 0;
        }
    }
    {
        PyObject *ns = get(h, d, A(numeric_strings));
        if (ns == NULL || !PyLong_CheckExact(ns))
            return -1;
        long long v = PyLong_AsLongLong(ns);
        if ((v == -1 && PyErr_Occurred()) || __builtin_add_overflow(*numeric_strings, v,
                                                                    numeric_strings))
            return -1;
    }

    /* the largest drive (max of the values present; a double compare picks the double of
     * Python's exact max: rounding is monotonic, and NaN compares alike) */
    double df = NAN, dt = NAN;
    if (seq_attr(h, d, A(hard_drives), &seq, &m) < 0)
        return -1;
    if (m) {
        int have_f = 0, have_t = 0;
        for (Py_ssize_t j = 0; j < m; j++) {
            if (PySequence_Fast_GET_SIZE(seq) != m) /* resized by a callback: unusual */
                return -1;
            PyObject *hd = PySequence_Fast_GET_ITEM(seq, j);
            double x;
            int has = opt_num(h, hd, A(available_capacity_gb), &x);
            if (has < 0)
                return -1;
            if (has && (!have_f || x > df))
                df = x;
            have_f |= has;
            if ((has = opt_num(h, hd, A(max_capacity_gb), &x)) < 0)
                return -1;
            if (has && (!have_t || x > dt))
                dt = x;
            have_t |= has;
        }
    }

    /* software: OS, driver, image tags */
    PyObject *sw = get(h, d, A(current_software));
    PyObject *hw = sw ? get(h, d, A(current_hardware)) : NULL;
    if (hw == NULL)
        return -1;
    PyObject *hw_os = Py_None, *sw_os = Py_None, *version = Py_None;
    if (hw != Py_None && (hw_os = get(h, hw, A(operating_system))) == NULL)
        return -1;
    uint64_t word = 0;
    PyObject *big_word = NULL; /* the word as a Python int once a tag's bit is >= 2**64 */
    if (sw != Py_None) {
        if ((sw_os = get(h, sw, A(operating_system))) == NULL)
            return -1;
        PyObject *drv = get(h, sw, A(nvidia_driver));
        if (drv == NULL)
            return -1;
        if (drv != Py_None && (version = get(h, drv, A(version))) == NULL)
            return -1;
        if (seq_attr(h, sw, A(cached_image_tags), &seq, &m) < 0)
            return -1;
        if (m) {
            for (Py_ssize_t j = 0; j < m; j++) {
                if (PySequence_Fast_GET_SIZE(seq) != m) /* resized by a callback: unusual */
                    return -1;
                PyObject *bit = image_bit_of(image_bit, PySequence_Fast_GET_ITEM(seq, j));
                if (bit == NULL || held_push(h, bit) < 0) {
                    Py_XDECREF(bit);
                    return -1;
                }
                if (big_word == NULL) {
                    unsigned long long b = PyLong_AsUnsignedLongLong(bit);
                    if (!(b == (unsigned long long)-1 && PyErr_Occurred())) {
                        word |= b;
                        continue;
                    }
                    PyErr_Clear();
                    big_word = PyLong_FromUnsignedLongLong(word);
                    if (big_word == NULL || held_push(h, big_word) < 0) {
                        Py_XDECREF(big_word);
                        return -1;
                    }
                }
                big_word = PyNumber_Or(big_word, bit);
                if (big_word == NULL || held_push(h, big_word) < 0) {
                    Py_XDECREF(big_word);
                    return -1;
                }
            }
        }
    }
    PyObject *d_os = get(h, d, A(operating_system));
    if (d_os == NULL)
        return -1;
    PyObject *oses[3] = {sw_os, hw_os, d_os};
    PyObject *name = empty_str;
    if (first_truthy(h, oses, A(name), &name) < 0)
        return -1;
    PyObject *archs[3] = {hw_os, sw_os, d_os};
    PyObject *arch = Py_None;
    if (first_truthy(h, archs, A(architecture), &arch) < 0)
        return -1;

    /* GPUs, with telemetry matched by name */
    Py_ssize_t ng;
    if (seq_attr(h, d, A(gpus), &seq, &ng) < 0)
        return -1;
    if (ng) {
        PyObject *tseq = NULL;
        int matched = 0;
        if (tg != Py_None) {
            Py_ssize_t lt = PyObject_Size(tg);
            if (lt < 0)
                return -1;
            matched = lt == ng;
        }
        if (matched) {
            if ((tseq = fast(h, tg)) == NULL || PySequence_Fast_GET_SIZE(tseq) != ng)
                return -1;
            for (Py_ssize_t j = 0; j < ng && matched; j++) {
                if (PySequence_Fast_GET_SIZE(seq) != ng || PySequence_Fast_GET_SIZE(tseq) != ng)
                    return -1;
                Py_ssize_t mark = h->n;
                PyObject *a = get(h, PySequence_Fast_GET_ITEM(tseq, j), A(name));
                PyObject *b = a ? get(h, PySequence_Fast_GET_ITEM(seq, j), A(name)) : NULL;
                if (b == NULL)
                    return -1;
                int ne = PyObject_RichCompareBool(a, b, Py_NE);
                if (ne < 0)
                    return -1;
                if (ne) {
                    PyObject *r = PyObject_CallFunctionObjArgs(agree, a, b, NULL);
                    if (r == NULL)
                        return -1;
                    int t = PyObject_IsTrue(r);
                    Py_DECREF(r);
                    if (t < 0)
                        return -1;
                    if (!t)
                        matched = 0;
                }
                held_release(h, mark);
            }
        }
        for (Py_ssize_t j = 0; j < ng; j++) {
            if (PySequence_Fast_GET_SIZE(seq) != ng ||
                (matched && PySequence_Fast_GET_SIZE(tseq) != ng))
                return -1;
            Py_ssize_t mark = h->n;
            PyObject *gp = PySequence_Fast_GET_ITEM(seq, j);
            PyObject *gname = get(h, gp, A(name));
            if (gname == NULL || PyList_Append(cols[COL_GNAME], gname) < 0)
                return -1;
            {
                PyObject *c = PyDict_GetItemWithError(x->luts[LUT_GPU], gname); /* borrowed */
                int64_t code = -1;
                if (c == NULL) {
                    if (PyErr_Occurred())
                        return -1;
                } else if ((code = PyLong_AsLongLong(c)) == -1 && PyErr_Occurred()) {
                    return -1;
                }
                if (buf_add(&x->gpu_codes, &code, sizeof code) < 0)
                    return -1;
            }
            double free, mx, load = NAN, tfree = NAN, ttotal = NAN;
            if (num_attr(h, gp, A(vram_gb_available), &free) < 0 ||
                num_attr(h, gp, A(vram_gb_max), &mx) < 0)
                return -1;
            if (matched) {
                PyObject *t = PySequence_Fast_GET_ITEM(tseq, j);
                if (num_attr(h, t, A(load), &load) < 0)
                    return -1;
                PyObject *vram = get(h, t, A(vram));
                if (vram == NULL)
                    return -1;
                if (vram != Py_None && (num_attr(h, vram, A(free), &tfree) < 0 ||
                                        num_attr(h, vram, A(total), &ttotal) < 0))
                    return -1;
            }
            if (doubles_add(g, free, mx, load, tfree, ttotal) < 0)
                return -1;
            held_release(h, mark);
        }
    }

    /* numbers */
    if (num_attr(h, d, A(reputation), &row[REP]) < 0)
        return -1;
    row[MS] = ms;
    row[CPU] = cpu_a;
    row[RF] = rf;
    row[RT] = rt;
    row[DF] = df;
    row[DT] = dt;
    row[SAV] = s_av;
    row[SMX] = s_mx;
    row[WHOLE] = whole ? s_mx : NAN;
    row[CORES] = (double)k;
    row[NG] = (double)ng;

    /* strings, coded as they are read */
    PyObject *v;
    Py_ssize_t len;
    const char *utf8;
    if ((v = get(h, d, A(uuid))) == NULL || !PyUnicode_CheckExact(v) ||
        (utf8 = PyUnicode_AsUTF8AndSize(v, &len)) == NULL ||
        buf_add(&x->uuid_bytes, utf8, len) < 0 || PySet_Add(x->uuids, v) < 0)
        return -1;
    x->ints[INT_UUID_LEN * n + i] = len;
    if ((v = get(h, d, A(name))) == NULL || new_name(x, n, i, v) < 0)
        return -1;
    if ((v = get(h, d, A(operator_account_uuid))) == NULL ||
        first_of(x, x->operators, INT_OPERATOR, n, i, v, x->start + i) < 0)
        return -1;
    if ((v = get(h, d, A(last_seen_at))) == NULL || time_of(x, 0, n, i, v) < 0)
        return -1;
    if (isnan(ms)) {
        if (time_of(x, 1, n, i, created) < 0)
            return -1;
    } else {
        x->times[n + i] = NAN;
    }
    if (PyList_Append(cols[COL_OS], name) < 0 || PyList_Append(cols[COL_ARCH], arch) < 0 ||
        PyList_Append(cols[COL_DRIVER], version) < 0 ||
        code_of(x, LUT_OS, INT_OS, n, i, name) < 0 ||
        code_of(x, LUT_ARCH, INT_ARCH, n, i, arch) < 0 ||
        code_of(x, LUT_DRIVER, INT_DRIVER, n, i, version) < 0)
        return -1;
    if ((v = get(h, d, A(suspended_at))) == NULL)
        return -1;
    flags[i] = v != Py_None;
    if ((v = get(h, d, A(deleted_at))) == NULL)
        return -1;
    flags[n + i] = v != Py_None;
    if (big_word == NULL) {
        PyObject *w = PyLong_FromUnsignedLongLong(word);
        if (w == NULL)
            return -1;
        int rc = PyList_Append(cols[COL_WORDS], w);
        Py_DECREF(w);
        if (rc < 0)
            return -1;
    } else if (PyList_Append(cols[COL_WORDS], big_word) < 0) {
        return -1;
    }
    PyObject *ft = PyTuple_New(5);
    if (ft == NULL)
        return -1;
    SlotCache *fnames[5] = {A(status), A(continent), A(country), A(subdivision),
                            A(compliance_tags)};
    for (int j = 0; j < 5; j++) {
        PyObject *x = getattr_cached(f, fnames[j]);
        if (x == NULL) {
            Py_DECREF(ft);
            return -1;
        }
        PyTuple_SET_ITEM(ft, j, x); /* steals x */
    }
    /* the facts' slot when the fleet has it, else -1 - the row where they first appear in
     * the chunk (the Python side gives new facts their slots) */
    PyObject *slot = PyDict_GetItemWithError(x->slots, ft); /* borrowed */
    long long at;
    int rc = 0;
    if (slot != NULL) {
        if ((at = PyLong_AsLongLong(slot)) == -1 && PyErr_Occurred())
            rc = -1;
        else
            x->ints[INT_FACTS * n + i] = at;
    } else if (PyErr_Occurred() || first_of(x, x->facts, INT_FACTS, n, i, ft, i) < 0) {
        rc = -1;
    } else {
        x->ints[INT_FACTS * n + i] = -1 - x->ints[INT_FACTS * n + i];
    }
    Py_DECREF(ft);
    return rc;
}

/* A writable int32 or int64 buffer of n items: its item size, or -1 with an exception set. */
static int int_buffer(PyObject *obj, Py_buffer *view, Py_ssize_t n) {
    if (PyObject_GetBuffer(obj, view, PyBUF_WRITABLE | PyBUF_FORMAT | PyBUF_C_CONTIGUOUS) < 0)
        return -1;
    const char *f = view->format ? view->format : "B";
    if (*f == '=' || *f == '<' || *f == '@')
        f++;
    int size = (int)view->itemsize;
    int ok = ((*f == 'i' || *f == 'l' || *f == 'q') && f[1] == '\0' &&
              (size == 4 || size == 8) && view->len == n * size);
    if (!ok) {
        PyBuffer_Release(view);
        PyErr_SetString(PyExc_ValueError, "not an int32/int64 buffer of one item per value");
        return -1;
    }
    return size;
}


static PyObject *read_chunk(PyObject *self, PyObject *args) {
    PyObject *nodes, *block_obj, *flags_obj, *image_bit, *agree, *ints_obj, *times_obj;
    Ctx x;
    memset(&x, 0, sizeof x);
    if (!PyArg_ParseTuple(args, "OOOO!O(O!O!O!O!)O!O!nO!O!O!OO", &nodes, &block_obj, &flags_obj,
                          &PyDict_Type, &image_bit, &agree, &PyDict_Type, &x.luts[LUT_OS],
                          &PyDict_Type, &x.luts[LUT_ARCH], &PyDict_Type, &x.luts[LUT_DRIVER],
                          &PyDict_Type, &x.luts[LUT_GPU], &PyDict_Type, &x.names,
                          &PyDict_Type, &x.operators, &x.start, &PyDict_Type, &x.slots, &PyDict_Type, &x.facts,
                          &PySet_Type, &x.uuids, &ints_obj, &times_obj))
        return NULL;
    PyObject *seq = PySequence_Fast(nodes, "nodes must be a sequence");
    if (seq == NULL)
        return NULL;
    Py_ssize_t n = PySequence_Fast_GET_SIZE(seq);
    Py_buffer block = {0}, flags = {0}, ints = {0}, times = {0};
    PyObject *cols[NCOLS] = {NULL};
    PyObject *result = NULL, *gbytes = NULL, *ubytes = NULL, *cbytes = NULL, *nbytes = NULL,
             *nlengths = NULL;
    Held h = {NULL, 0, 0};
    Doubles g = {NULL, 0, 0};
    long long numeric_strings = 0;
    int failed = 0;

    if (PyObject_GetBuffer(block_obj, &block, PyBUF_WRITABLE) < 0) {
        block.obj = NULL;
        goto done;
    }
    if (PyObject_GetBuffer(flags_obj, &flags, PyBUF_WRITABLE) < 0) {
        flags.obj = NULL;
        goto done;
    }
    if (PyObject_GetBuffer(times_obj, &times, PyBUF_WRITABLE) < 0) {
        times.obj = NULL;
        goto done;
    }
    int size = int_buffer(ints_obj, &ints, NINTS * n);
    if (size < 0) {
        ints.obj = NULL;
        goto done;
    }
    if (block.len != n * NUMS * (Py_ssize_t)sizeof(double) || flags.len != 2 * n ||
        times.len != 2 * n * (Py_ssize_t)sizeof(double) || size != 8) {
        PyErr_SetString(PyExc_ValueError, "read_chunk: buffers of the wrong size");
        goto done;
    }
    x.ints = (int64_t *)ints.buf;
    x.times = (double *)times.buf;
    if ((x.odd = PyList_New(0)) == NULL)
        goto done;
    for (int j = 0; j < NCOLS; j++)
        if ((cols[j] = PyList_New(0)) == NULL)
            goto done;
    double *rows = (double *)block.buf;
    for (Py_ssize_t i = 0; i < n; i++) {
        if (PySequence_Fast_GET_SIZE(seq) != n) { /* resized by a callback */
            failed = 1;
            break;
        }
        /* the node PF_STEP * (PF_LEVELS - lv) ahead: its objects lv levels down (the levels
         * above came in on the steps before) */
        for (int lv = 0; lv < PF_LEVELS; lv++)
            if (i + PF_STEP * (PF_LEVELS - lv) < n)
                prefetch_level(PySequence_Fast_GET_ITEM(seq, i + PF_STEP * (PF_LEVELS - lv)), lv);
        int rc = read_node(&h, PySequence_Fast_GET_ITEM(seq, i), i, rows + i * NUMS,
                           (char *)flags.buf, n, cols, &g, image_bit, agree, &numeric_strings,
                           &x);
        held_release(&h, 0);
        if (rc < 0) {
            failed = 1;
            break;
        }
    }
    if (failed) {
        /* whatever went wrong (or was merely unusual), the Python loop redoes the chunk and
         * raises its own error if there is one */
        if (PyErr_Occurred() && (PyErr_ExceptionMatches(PyExc_MemoryError) ||
                                 !PyErr_ExceptionMatches(PyExc_Exception)))
            goto done; /* out of memory, KeyboardInterrupt, SystemExit: not ours to redo */
        PyErr_Clear();
        PyErr_SetString(Fallback, "unusual values: the Python builder reads this chunk");
        goto done;
    }
    gbytes = PyBytes_FromStringAndSize((const char *)g.data, g.n * (Py_ssize_t)sizeof(double));
    ubytes = PyBytes_FromStringAndSize(x.uuid_bytes.data, x.uuid_bytes.n);
    cbytes = PyBytes_FromStringAndSize(x.gpu_codes.data, x.gpu_codes.n);
    nbytes = PyBytes_FromStringAndSize(x.name_bytes.data, x.name_bytes.n);
    nlengths = PyBytes_FromStringAndSize(x.name_lengths.data, x.name_lengths.n);
    if (gbytes == NULL || ubytes == NULL || cbytes == NULL || nbytes == NULL || nlengths == NULL)
        goto done;
    result = Py_BuildValue("(OOOOOOOOOOOL)", cols[COL_OS], cols[COL_ARCH], cols[COL_DRIVER],
                           cols[COL_WORDS], cols[COL_GNAME], gbytes, cbytes, ubytes, nbytes,
                           nlengths, x.odd, numeric_strings);
done:
    held_release(&h, 0);
    PyMem_Free(h.items);
    PyMem_Free(g.data);
    PyMem_Free(x.uuid_bytes.data);
    PyMem_Free(x.gpu_codes.data);
    PyMem_Free(x.name_bytes.data);
    PyMem_Free(x.name_lengths.data);
    Py_XDECREF(nbytes);
    Py_XDECREF(nlengths);
    Py_XDECREF(gbytes);
    Py_XDECREF(ubytes);
    Py_XDECREF(cbytes);
    Py_XDECREF(x.odd);
    for (int j = 0; j < NCOLS; j++)
        Py_XDECREF(cols[j]);
    if (block.obj != NULL)
        PyBuffer_Release(&block);
    if (flags.obj != NULL)
        PyBuffer_Release(&flags);
    if (ints.obj != NULL)
        PyBuffer_Release(&ints);
    if (times.obj != NULL)
        PyBuffer_Release(&times);
    Py_DECREF(seq);
    return result;
}

static int put(void *buf, int size, Py_ssize_t i, long long v) {
    if (size == 4) {
        if (v < INT32_MIN || v > INT32_MAX) {
            PyErr_SetString(PyExc_OverflowError, "codes: a code beyond int32");
            return -1;
        }
        ((int32_t *)buf)[i] = (int32_t)v;
    } else {
        ((int64_t *)buf)[i] = (int64_t)v;
    }
    return 0;
}

/* codes(lut, values, out) -> count missing: out[i] = lut.get(values[i], -1). */
static PyObject *codes(PyObject *self, PyObject *args) {
    PyObject *lut, *values, *out;
    if (!PyArg_ParseTuple(args, "O!O!O", &PyDict_Type, &lut, &PyList_Type, &values, &out))
        return NULL;
    Py_ssize_t n = PyList_GET_SIZE(values), missing = 0;
    Py_buffer view;
    int size = int_buffer(out, &view, n);
    if (size < 0)
        return NULL;
    for (Py_ssize_t i = 0; i < n; i++) {
        if (PyList_GET_SIZE(values) != n) { /* a key's __eq__ changed the list */
            PyErr_SetString(PyExc_RuntimeError, "codes: values changed size");
            goto fail;
        }
        PyObject *key = PyList_GET_ITEM(values, i);
        Py_INCREF(key);
        PyObject *c = PyDict_GetItemWithError(lut, key); /* borrowed */
        Py_DECREF(key);
        long long v = -1;
        if (c == NULL) {
            if (PyErr_Occurred())
                goto fail;
            missing++;
        } else if ((v = PyLong_AsLongLong(c)) == -1 && PyErr_Occurred()) {
            goto fail;
        }
        if (put(view.buf, size, i, v) < 0)
            goto fail;
    }
    PyBuffer_Release(&view);
    return PyLong_FromSsize_t(missing);
fail:
    PyBuffer_Release(&view);
    return NULL;
}

/* positions(first, values, start, out): out[i] = first.setdefault(values[i], start + i). */
static PyObject *positions(PyObject *self, PyObject *args) {
    PyObject *first, *values, *out;
    Py_ssize_t start;
    if (!PyArg_ParseTuple(args, "O!O!nO", &PyDict_Type, &first, &PyList_Type, &values, &start,
                          &out))
        return NULL;
    Py_ssize_t n = PyList_GET_SIZE(values);
    Py_buffer view;
    int size = int_buffer(out, &view, n);
    if (size < 0)
        return NULL;
    for (Py_ssize_t i = 0; i < n; i++) {
        if (PyList_GET_SIZE(values) != n) { /* a key's __eq__ changed the list */
            PyErr_SetString(PyExc_RuntimeError, "positions: values changed size");
            goto fail;
        }
        PyObject *pos = PyLong_FromSsize_t(start + i);
        if (pos == NULL)
            goto fail;
        PyObject *key = PyList_GET_ITEM(values, i);
        Py_INCREF(key);
        PyObject *c = PyDict_SetDefault(first, key, pos); /* borrowed */
        Py_DECREF(key);
        Py_DECREF(pos);
        long long v;
        if (c == NULL || ((v = PyLong_AsLongLong(c)) == -1 && PyErr_Occurred()) ||
            put(view.buf, size, i, v) < 0)
            goto fail;
    }
    PyBuffer_Release(&view);
    Py_RETURN_NONE;
fail:
    PyBuffer_Release(&view);
    return NULL;
}

/* repeat(values, counts, out, itemsize) -> None: out = numpy.repeat(values, counts) for
 * contiguous 1-D buffers (values: n items of `itemsize` bytes, 1, 2, 4 or 8; counts: n int64;
 * out: sum(counts) items), the copy done with the GIL released (numpy.repeat holds it, and
 * the threads of rank_many(..., workers=N) take turns at it). ValueError (nothing written)
 * for a negative count, a total other than out's length, or buffers of the wrong size. */
static PyObject *repeat(PyObject *self, PyObject *args) {
    Py_buffer v, c, o;
    int itemsize;
    if (!PyArg_ParseTuple(args, "y*y*w*i", &v, &c, &o, &itemsize))
        return NULL;
    const char *why = NULL;
    Py_ssize_t n = c.len / (Py_ssize_t)sizeof(int64_t);
    if (itemsize != 1 && itemsize != 2 && itemsize != 4 && itemsize != 8)
        why = "repeat: itemsize must be 1, 2, 4 or 8";
    else if (c.len % (Py_ssize_t)sizeof(int64_t) != 0 || v.len != n * itemsize ||
             o.len % itemsize != 0)
        why = "repeat: buffers of the wrong size";
    if (why == NULL) {
        const int64_t *k = (const int64_t *)c.buf;
        Py_ssize_t total = o.len / itemsize;
        Py_BEGIN_ALLOW_THREADS
        int64_t sum = 0;
        for (Py_ssize_t i = 0; i < n && why == NULL; i++)
            if (k[i] < 0)
                why = "repeat: a negative count";
            else if (__builtin_add_overflow(sum, k[i], &sum) || sum > total)
                why = "repeat: the counts add up to more than out holds";
        if (why == NULL && sum != total)
            why = "repeat: the counts add up to less than out holds";
        if (why == NULL) {
#define FILL(T)                                             \
    {                                                       \
        const T *src = (const T *)v.buf;                    \
        T *dst = (T *)o.buf;                                \
        for (Py_ssize_t i = 0; i < n; i++) {                \
            T x = src[i];                                   \
            for (int64_t j = k[i]; j > 0; j--)              \
                *dst++ = x;                                 \
        }                                                   \
    }
            switch (itemsize) {
            case 1: { /* 8 bytes stored at once, advanced by the count (as for 8-byte items) */
                const unsigned char *src = (const unsigned char *)v.buf;
                unsigned char *dst = (unsigned char *)o.buf, *end = dst + total;
                for (Py_ssize_t i = 0; i < n; i++) {
                    int64_t cnt = k[i];
                    if (end - dst >= 8) {
                        uint64_t x8 = src[i] * 0x0101010101010101ULL;
                        memcpy(dst, &x8, 8);
                        if (cnt > 8)
                            memset(dst + 8, src[i], (size_t)(cnt - 8));
                    } else {
                        memset(dst, src[i], (size_t)cnt);
                    }
                    dst += cnt;
                }
                break;
            }
            case 2: FILL(uint16_t) break;
            case 4: FILL(uint32_t) break;
            default: { /* eight stores whatever the count (a count of 0-8 is then no branch to
                          mispredict: random small counts cost numpy.repeat ~8 ns each); the
                          next item's stores overwrite the surplus, and the last 8 slots are
                          filled exactly */
                const uint64_t *src = (const uint64_t *)v.buf;
                uint64_t *dst = (uint64_t *)o.buf, *end = dst + total;
                for (Py_ssize_t i = 0; i < n; i++) {
                    uint64_t x = src[i];
                    int64_t cnt = k[i];
                    if (end - dst >= 8) {
                        dst[0] = dst[1] = dst[2] = dst[3] = x;
                        dst[4] = dst[5] = dst[6] = dst[7] = x;
                        for (int64_t j = 8; j < cnt; j++)
                            dst[j] = x;
                    } else {
                        for (int64_t j = 0; j < cnt; j++)
                            dst[j] = x;
                    }
                    dst += cnt;
                }
                break;
            }
            }
#undef FILL
        }
        Py_END_ALLOW_THREADS
    }
    PyBuffer_Release(&v);
    PyBuffer_Release(&c);
    PyBuffer_Release(&o);
    if (why != NULL) {
        PyErr_SetString(PyExc_ValueError, why);
        return NULL;
    }
    Py_RETURN_NONE;
}

#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ == __ORDER_BIG_ENDIAN__
#define NS_BIG_ENDIAN 1
#else
#define NS_BIG_ENDIAN 0
#endif

static inline uint64_t load8(const unsigned char *p) {
    uint64_t w;
    memcpy(&w, p, 8);
    return w;
}

/* How many of the 8 bytes of `w` are not 0. */
static inline int64_t nonzero_bytes(uint64_t w) {
    w |= w >> 4; /* bit 0 of each byte: the OR of its 8 bits (what moves in from the byte */
    w |= w >> 2; /* above lands in bits 4-7, which never reach bit 0) */
    w |= w >> 1;
    w &= 0x0101010101010101ULL;
    return (int64_t)((w * 0x0101010101010101ULL) >> 56); /* the sum of the 8 bytes */
}

/* segment_counts(mask, offsets, out) -> None: out[i] = the count of nonzero bytes of
 * mask[offsets[i]:offsets[i + 1]] (mask: bytes, e.g. a bool array; offsets: n + 1 int64,
 * non-decreasing, within the mask; out: n int64), with the GIL released. ValueError (nothing
 * written) for offsets out of order or out of range, or buffers of the wrong size. */
static PyObject *segment_counts(PyObject *self, PyObject *args) {
    Py_buffer m, f, o;
    if (!PyArg_ParseTuple(args, "y*y*w*", &m, &f, &o))
        return NULL;
    const char *why = NULL;
    Py_ssize_t n = f.len / (Py_ssize_t)sizeof(int64_t) - 1;
    if (f.len % (Py_ssize_t)sizeof(int64_t) != 0 || n < 0 ||
        o.len != n * (Py_ssize_t)sizeof(int64_t))
        why = "segment_counts: buffers of the wrong size";
    if (why == NULL) {
        const unsigned char *mask = (const unsigned char *)m.buf;
        const int64_t *off = (const int64_t *)f.buf;
        int64_t *out = (int64_t *)o.buf;
        int64_t len = (int64_t)m.len;
        Py_BEGIN_ALLOW_THREADS
        for (Py_ssize_t i = 0; i < n && why == NULL; i++)
            if (off[i] < 0 || off[i] > off[i + 1] || off[i + 1] > len)
                why = "segment_counts: offsets out of order or beyond the mask";
        if (why == NULL)
            for (Py_ssize_t i = 0; i < n; i++) {
                /* 8 bytes at a time, and the last 0-7 as one masked word when 8 can be read:
                 * no branch on a segment's length below 8 (random GPU counts cost a
                 * byte loop ~8 ns each in mispredictions) */
                int64_t j = off[i], b = off[i + 1], cnt = 0;
                for (; b - j >= 8; j += 8)
                    cnt += nonzero_bytes(load8(mask + j));
                /* (the mask keeps the word's first b - j bytes: its low bytes on a
                 * little-endian machine; a big-endian one counts them one by one) */
                if (j + 8 <= len && !NS_BIG_ENDIAN)
                    cnt += nonzero_bytes(load8(mask + j) & ((1ULL << (8 * (b - j))) - 1));
                else
                    for (; j < b; j++)
                        cnt += mask[j] != 0;
                out[i] = cnt;
            }
        Py_END_ALLOW_THREADS
    }
    PyBuffer_Release(&m);
    PyBuffer_Release(&f);
    PyBuffer_Release(&o);
    if (why != NULL) {
        PyErr_SetString(PyExc_ValueError, why);
        return NULL;
    }
    Py_RETURN_NONE;
}

/* a < b in numpy's sort order of doubles: NaN after every number (and equal to NaN) */
static inline int nan_last_less(double a, double b) { return !isnan(a) && (isnan(b) || a < b); }

/* Restore the min-heap h[0..k) (numpy's order) below position i. */
static void sift_down(double *h, Py_ssize_t k, Py_ssize_t i) {
    double v = h[i];
    for (;;) {
        Py_ssize_t c = 2 * i + 1;
        if (c >= k)
            break;
        if (c + 1 < k && nan_last_less(h[c + 1], h[c]))
            c++;
        if (!nan_last_less(h[c], v))
            break;
        h[i] = h[c];
        i = c;
    }
    h[i] = v;
}

/* reaching(lower, upper, pos, bounds, k, out, direct) -> n: the pairs that can be in their
 * segment's top k, as nodeselect.table.reaching computes them with NumPy. Pair i (of
 * len(pos)) is candidate pos[i] (with `direct` true: value i, pos not read, len(lower)
 * pairs); segment j is the pairs bounds[j]..bounds[j + 1] (bounds: non-decreasing, from 0 to
 * the number of pairs). A segment of at most k pairs keeps them all; a longer one keeps the
 * pairs with upper[pos[i]] >= the k-th largest of lower[pos[...]] over the segment (numpy's
 * order: NaN largest; a NaN threshold keeps none). out[:n] = the kept i, ascending (out: one
 * int64 per pair). One pass per segment keeps its k largest lower values in a heap (each
 * value is compared with the heap's least), one more keeps the pairs; the GIL released.
 * ValueError (nothing written) for buffers of the wrong size, bounds out of order or not
 * from 0 to the pairs, a position beyond the candidates, or k < 1. */
static PyObject *reaching(PyObject *self, PyObject *args) {
    Py_buffer lb, ub, pb, bb, ob;
    Py_ssize_t k;
    int direct;
    if (!PyArg_ParseTuple(args, "y*y*y*y*nw*p", &lb, &ub, &pb, &bb, &k, &ob, &direct))
        return NULL;
    const char *why = NULL;
    Py_ssize_t c = lb.len / (Py_ssize_t)sizeof(double);
    Py_ssize_t p = direct ? c : pb.len / (Py_ssize_t)sizeof(int64_t);
    Py_ssize_t segs = bb.len / (Py_ssize_t)sizeof(int64_t) - 1;
    double *heap = NULL;
    if (lb.len % (Py_ssize_t)sizeof(double) != 0 || ub.len != lb.len ||
        pb.len % (Py_ssize_t)sizeof(int64_t) != 0 || bb.len % (Py_ssize_t)sizeof(int64_t) != 0 ||
        segs < 0 || ob.len != p * (Py_ssize_t)sizeof(int64_t))
        why = "reaching: buffers of the wrong size";
    else if (k < 1)
        why = "reaching: k must be at least 1";
    else if ((heap = PyMem_RawMalloc((size_t)k * sizeof(double))) == NULL)
        why = "reaching: no memory for the heap";
    Py_ssize_t kept = 0;
    if (why == NULL) {
        const double *lo = (const double *)lb.buf, *hi = (const double *)ub.buf;
        const int64_t *pos = (const int64_t *)pb.buf, *bounds = (const int64_t *)bb.buf;
        int64_t *out = (int64_t *)ob.buf;
#define AT(i) (direct ? (i) : pos[i])
        Py_BEGIN_ALLOW_THREADS
        if (bounds[0] != 0 || bounds[segs] != p)
            why = "reaching: bounds must run from 0 to the number of pairs";
        for (Py_ssize_t j = 0; j < segs && why == NULL; j++)
            if (bounds[j] > bounds[j + 1])
                why = "reaching: bounds out of order";
        for (Py_ssize_t i = 0; i < p && !direct && why == NULL; i++)
            if (pos[i] < 0 || pos[i] >= c)
                why = "reaching: a position beyond the candidates";
        for (Py_ssize_t j = 0; j < segs && why == NULL; j++) {
            int64_t a = bounds[j], e = bounds[j + 1];
            if (e - a <= k) {
                for (int64_t i = a; i < e; i++)
                    out[kept++] = i;
                continue;
            }
            for (Py_ssize_t i = 0; i < k; i++)
                heap[i] = lo[AT(a + i)];
            for (Py_ssize_t i = k / 2 - 1; i >= 0; i--)
                sift_down(heap, k, i);
            for (int64_t i = a + k; i < e; i++) {
                double v = lo[AT(i)];
                if (nan_last_less(heap[0], v)) {
                    heap[0] = v;
                    sift_down(heap, k, 0);
                }
            }
            double kth = heap[0];
            for (int64_t i = a; i < e; i++) {
                out[kept] = i; /* written always, counted when kept: no branch to mispredict */
                kept += hi[AT(i)] >= kth;
            }
        }
        Py_END_ALLOW_THREADS
#undef AT
    }
    PyMem_RawFree(heap);
    PyBuffer_Release(&lb);
    PyBuffer_Release(&ub);
    PyBuffer_Release(&pb);
    PyBuffer_Release(&bb);
    PyBuffer_Release(&ob);
    if (why != NULL) {
        PyErr_SetString(PyExc_ValueError, why);
        return NULL;
    }
    return PyLong_FromSsize_t(kept);
}

static PyMethodDef methods[] = {
    {"codes", codes, METH_VARARGS,
     "codes(lut, values, out) -> missing: out[i] = lut.get(values[i], -1)"},
    {"positions", positions, METH_VARARGS,
     "positions(first, values, start, out): out[i] = first.setdefault(values[i], start + i)"},
    {"repeat", repeat, METH_VARARGS,
     "repeat(values, counts, out, itemsize): out = numpy.repeat(values, counts), GIL released"},
    {"segment_counts", segment_counts, METH_VARARGS,
     "segment_counts(mask, offsets, out): nonzero bytes per CSR segment, GIL released"},
    {"reaching", reaching, METH_VARARGS,
     "reaching(lower, upper, pos, bounds, k, out, direct) -> n: pairs that can reach their top k"},
    {"read_chunk", read_chunk, METH_VARARGS,
     "read_chunk(nodes, block, flags, image_bit, agree) -> columns (see the module source)"},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef module = {
    PyModuleDef_HEAD_INIT, "nodeselect.table._cbuild",
    "The table build's per-node read in C (optional; see nodeselect.table._build).", -1,
    methods,
};

PyMODINIT_FUNC PyInit__cbuild(void) {
#define INTERN(n) \
    if ((s_##n = PyUnicode_InternFromString(#n)) == NULL) \
        return NULL;
    NAMES(INTERN)
#undef INTERN

    if ((empty_str = PyUnicode_FromString("")) == NULL)
        return NULL;
    PyObject *m = PyModule_Create(&module);
    if (m == NULL)
        return NULL;
    /* bumped with every change of what the functions take or return: _build ignores an
     * extension of another version (a stale build left in src/ by an earlier editable install) */
    if (PyModule_AddIntConstant(m, "VERSION", 5) < 0) {
        Py_DECREF(m);
        return NULL;
    }
    Fallback = PyErr_NewException("nodeselect.table._cbuild.Fallback", NULL, NULL);
    if (Fallback == NULL || PyModule_AddObjectRef(m, "Fallback", Fallback) < 0) {
        Py_DECREF(m);
        return NULL;
    }
    return m;
}
