/*
 * OTLP/protobuf ExportLogsServiceRequest bytes -> canonical records (Python dicts), in one pass.
 *
 * This is the compiled twin of ingest.decode.canonical.canonical_logs for the common case: a
 * well-formed request whose records break no per-record limit. It reads the protobuf wire
 * format directly instead of building upb messages and then walking them from Python, which
 * was most of a decode worker's time.
 *
 * It never decides anything the Python path would decide differently: whenever a request is
 * malformed, uses a protobuf feature it does not handle (a singular message field sent twice,
 * which protobuf merges; a second value in an AnyValue's oneof; groups; EntityRefs), or has a
 * record over a limit, it returns None and the caller runs the Python path, which produces the
 * exact error, 400 answer or quarantine reason. tests/ingest/test_logs_pb.py checks that both
 * paths give identical records on generated and mutated requests.
 *
 * Field numbers: opentelemetry-proto collector/logs/v1, logs/v1, common/v1, resource/v1.
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <math.h>
#include <stdint.h>
#include <string.h>

/* Every parsing function returns one of these. */
#define OK 0
#define BAIL 1  /* hand the request to the Python path; no Python exception is set */
#define FAIL -1 /* a Python exception is set (out of memory) */

enum { WT_VARINT = 0, WT_I64 = 1, WT_LEN = 2, WT_I32 = 5 };

typedef struct {
    const uint8_t *p;
    const uint8_t *end;
} Buf;

typedef struct {
    Py_ssize_t max_records;
    Py_ssize_t max_attributes;
    Py_ssize_t max_string;
    int max_depth;
    Py_ssize_t records;
    Py_ssize_t max_key;
} Limits;

/* ---- interned short strings: attribute keys and small values repeat across records ------- */

#define CACHE_SLOTS 1024
#define CACHE_MAX_LEN 48

typedef struct {
    PyObject *slots[CACHE_SLOTS];
} StrCache;

static void cache_clear(StrCache *cache) {
    for (int i = 0; i < CACHE_SLOTS; i++) Py_CLEAR(cache->slots[i]);
}

/* A str for UTF-8 bytes; BAIL (nothing set) when they are not valid UTF-8. */
static int make_str(StrCache *cache, const uint8_t *s, Py_ssize_t n, PyObject **out) {
    uint32_t h = 2166136261u;
    PyObject **slot = NULL;
    if (n <= CACHE_MAX_LEN) {
        for (Py_ssize_t i = 0; i < n; i++) h = (h ^ s[i]) * 16777619u;
        slot = &cache->slots[h % CACHE_SLOTS];
        if (*slot != NULL) {
            Py_ssize_t len;
            const char *have = PyUnicode_AsUTF8AndSize(*slot, &len);
            if (have != NULL && len == n && memcmp(have, s, (size_t)n) == 0) {
                Py_INCREF(*slot);
                *out = *slot;
                return OK;
            }
        }
    }
    PyObject *str = PyUnicode_DecodeUTF8((const char *)s, n, NULL);
    if (str == NULL) {
        if (PyErr_ExceptionMatches(PyExc_UnicodeDecodeError)) {
            PyErr_Clear();
            return BAIL;
        }
        return FAIL;
    }
    if (slot != NULL) {
        Py_XSETREF(*slot, str);
        Py_INCREF(str);
    }
    *out = str;
    return OK;
}

/* ---- wire format ------------------------------------------------------------------------- */

static int read_varint(Buf *b, uint64_t *out) {
    uint64_t value = 0;
    for (int shift = 0; shift < 64 && b->p < b->end; shift += 7) {
        uint8_t byte = *b->p++;
        if (shift == 63 && byte > 1) return BAIL; /* more than 64 bits */
        value |= (uint64_t)(byte & 0x7f) << shift;
        if (!(byte & 0x80)) {
            *out = value;
            return OK;
        }
    }
    return BAIL; /* truncated or longer than ten bytes */
}

static int read_tag(Buf *b, uint32_t *field, int *wire_type) {
    uint64_t key;
    if (read_varint(b, &key) != OK || (key >> 3) == 0 || (key >> 3) > 0x1fffffff) return BAIL;
    *field = (uint32_t)(key >> 3);
    *wire_type = (int)(key & 7);
    return OK;
}

static int read_len(Buf *b, Buf *sub) {
    uint64_t n;
    if (read_varint(b, &n) != OK || n > (uint64_t)(b->end - b->p)) return BAIL;
    sub->p = b->p;
    sub->end = b->p + n;
    b->p += n;
    return OK;
}

static int read_fixed64(Buf *b, uint64_t *out) {
    if (b->end - b->p < 8) return BAIL;
    uint64_t v = 0;
    for (int i = 7; i >= 0; i--) v = (v << 8) | b->p[i];
    b->p += 8;
    *out = v;
    return OK;
}

static int skip(Buf *b, int wire_type) {
    uint64_t ignored;
    Buf sub;
    switch (wire_type) {
        case WT_VARINT: return read_varint(b, &ignored);
        case WT_I64:
            if (b->end - b->p < 8) return BAIL;
            b->p += 8;
            return OK;
        case WT_LEN: return read_len(b, &sub);
        case WT_I32:
            if (b->end - b->p < 4) return BAIL;
            b->p += 4;
            return OK;
        default: return BAIL; /* groups, or not a wire type */
    }
}

/* A known string field that is not kept: protobuf still requires valid UTF-8. */
static int check_utf8(Buf *b) {
    Buf s;
    if (read_len(b, &s) != OK) return BAIL;
    PyObject *str = PyUnicode_DecodeUTF8((const char *)s.p, s.end - s.p, NULL);
    if (str == NULL) {
        if (PyErr_ExceptionMatches(PyExc_UnicodeDecodeError)) {
            PyErr_Clear();
            return BAIL;
        }
        return FAIL;
    }
    Py_DECREF(str);
    return OK;
}

/* ---- AnyValue ----------------------------------------------------------------------------- */

static const char B64[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

static PyObject *base64_str(const uint8_t *s, Py_ssize_t n) {
    PyObject *out = PyUnicode_New(((n + 2) / 3) * 4, 127);
    if (out == NULL) return NULL;
    Py_UCS1 *d = PyUnicode_1BYTE_DATA(out);
    Py_ssize_t i = 0;
    for (; i + 2 < n; i += 3) {
        uint32_t v = ((uint32_t)s[i] << 16) | ((uint32_t)s[i + 1] << 8) | s[i + 2];
        *d++ = B64[v >> 18];
        *d++ = B64[(v >> 12) & 63];
        *d++ = B64[(v >> 6) & 63];
        *d++ = B64[v & 63];
    }
    if (i < n) {
        uint32_t v = (uint32_t)s[i] << 16;
        if (i + 1 < n) v |= (uint32_t)s[i + 1] << 8;
        *d++ = B64[v >> 18];
        *d++ = B64[(v >> 12) & 63];
        *d++ = i + 1 < n ? B64[(v >> 6) & 63] : '=';
        *d++ = '=';
    }
    return out;
}

static PyObject *hex_str(const uint8_t *s, Py_ssize_t n) {
    static const char digits[] = "0123456789abcdef";
    PyObject *out = PyUnicode_New(n * 2, 127);
    if (out == NULL) return NULL;
    Py_UCS1 *d = PyUnicode_1BYTE_DATA(out);
    for (Py_ssize_t i = 0; i < n; i++) {
        *d++ = digits[s[i] >> 4];
        *d++ = digits[s[i] & 15];
    }
    return out;
}

static int key_values(StrCache *cache, Buf *b, uint32_t field_number, int depth,
                      const Limits *limits, PyObject *into, Py_ssize_t *count);

static PyObject *S_NAN, *S_INFINITY, *S_MINUS_INFINITY;

/* Deeper AnyValues are left to the Python path whatever --max-value-depth says: upb refuses
 * messages nested past 100 levels (two per AnyValue level), and the C stack stays small. */
#define NESTING_CAP 32

/* An AnyValue at nesting depth `depth` (a top-level value is 1) -> JSON-like Python value. */
static int any_value(StrCache *cache, Buf *b, int depth, const Limits *limits, PyObject **out) {
    uint32_t field;
    int wire_type, seen = 0, kind = 0;
    Buf chosen = {NULL, NULL};
    uint64_t scalar = 0;
    if (depth > NESTING_CAP) return BAIL;
    while (b->p < b->end) {
        if (read_tag(b, &field, &wire_type) != OK) return BAIL;
        int expected;
        switch (field) {
            case 1: case 5: case 6: case 7: case 8: expected = WT_LEN; break;
            case 2: case 3: expected = WT_VARINT; break;
            case 4: expected = WT_I64; break;
            default:
                if (skip(b, wire_type) != OK) return BAIL;
                continue;
        }
        if (wire_type != expected || ++seen > 1 || field == 8) return BAIL;
        kind = (int)field;
        if (expected == WT_LEN) {
            if (read_len(b, &chosen) != OK) return BAIL;
        } else if (expected == WT_VARINT) {
            if (read_varint(b, &scalar) != OK) return BAIL;
        } else if (read_fixed64(b, &scalar) != OK) {
            return BAIL;
        }
    }
    switch (kind) {
        case 0:
            Py_INCREF(Py_None);
            *out = Py_None;
            return OK;
        case 1:
            if (chosen.end - chosen.p > limits->max_string) return BAIL;
            return make_str(cache, chosen.p, chosen.end - chosen.p, out);
        case 2:
            *out = PyBool_FromLong(scalar != 0);
            return OK;
        case 3:
            *out = PyLong_FromLongLong((long long)(int64_t)scalar);
            return *out ? OK : FAIL;
        case 4: {
            double d;
            memcpy(&d, &scalar, sizeof d);
            if (!isfinite(d)) { /* JSON has none: spelled as proto3 JSON does, as canonical.py */
                *out = isnan(d) ? S_NAN : d > 0 ? S_INFINITY : S_MINUS_INFINITY;
                Py_INCREF(*out);
                return OK;
            }
            *out = PyFloat_FromDouble(d);
            return *out ? OK : FAIL;
        }
        case 5: {
            if (depth >= limits->max_depth) return BAIL;
            PyObject *list = PyList_New(0);
            if (list == NULL) return FAIL;
            while (chosen.p < chosen.end) {
                Buf item;
                if (read_tag(&chosen, &field, &wire_type) != OK) goto list_bail;
                if (field != 1) {
                    if (skip(&chosen, wire_type) != OK) goto list_bail;
                    continue;
                }
                if (wire_type != WT_LEN || read_len(&chosen, &item) != OK) goto list_bail;
                PyObject *value;
                int rc = any_value(cache, &item, depth + 1, limits, &value);
                if (rc != OK) {
                    Py_DECREF(list);
                    return rc;
                }
                rc = PyList_Append(list, value);
                Py_DECREF(value);
                if (rc < 0) {
                    Py_DECREF(list);
                    return FAIL;
                }
            }
            *out = list;
            return OK;
        list_bail:
            Py_DECREF(list);
            return BAIL;
        }
        case 6: {
            if (depth >= limits->max_depth) return BAIL;
            PyObject *dict = PyDict_New();
            if (dict == NULL) return FAIL;
            Py_ssize_t count = 0;
            int rc = key_values(cache, &chosen, 1, depth + 1, limits, dict, &count);
            if (rc != OK) {
                Py_DECREF(dict);
                return rc;
            }
            *out = dict;
            return OK;
        }
        default: /* 7: bytes (deeper than the limit, the Python path rejects it too) */
            if (depth >= limits->max_depth) return BAIL;
            *out = base64_str(chosen.p, chosen.end - chosen.p);
            return *out ? OK : FAIL;
    }
}

/* One KeyValue into a dict (the last of a repeated key wins, as in a Python dict). */
static int key_value(StrCache *cache, Buf *b, int depth, const Limits *limits, PyObject *into) {
    uint32_t field;
    int wire_type, keys = 0, values = 0;
    Buf key = {b->p, b->p}, value = {NULL, NULL};
    while (b->p < b->end) {
        if (read_tag(b, &field, &wire_type) != OK) return BAIL;
        if (field == 1 || field == 2) {
            if (wire_type != WT_LEN) return BAIL;
            if (field == 1) {
                if (++keys > 1 || read_len(b, &key) != OK) return BAIL;
            } else if (++values > 1 || read_len(b, &value) != OK) {
                return BAIL;
            }
        } else if (skip(b, wire_type) != OK) {
            return BAIL;
        }
    }
    if (key.end - key.p > limits->max_key) return BAIL;
    PyObject *k, *v;
    int rc = make_str(cache, key.p, key.end - key.p, &k);
    if (rc != OK) return rc;
    if (values == 0) {
        Py_INCREF(Py_None);
        v = Py_None;
    } else if ((rc = any_value(cache, &value, depth, limits, &v)) != OK) {
        Py_DECREF(k);
        return rc;
    }
    rc = PyDict_SetItem(into, k, v);
    Py_DECREF(k);
    Py_DECREF(v);
    return rc < 0 ? FAIL : OK;
}

/* Every KeyValue under `field_number` of a message into a dict; counts them (repeats too). */
static int key_values(StrCache *cache, Buf *b, uint32_t field_number, int depth,
                      const Limits *limits, PyObject *into, Py_ssize_t *count) {
    uint32_t field;
    int wire_type;
    while (b->p < b->end) {
        if (read_tag(b, &field, &wire_type) != OK) return BAIL;
        if (field != field_number) {
            if (skip(b, wire_type) != OK) return BAIL;
            continue;
        }
        Buf kv;
        if (wire_type != WT_LEN || read_len(b, &kv) != OK) return BAIL;
        int rc = key_value(cache, &kv, depth, limits, into);
        if (rc != OK) return rc;
        ++*count;
    }
    return OK;
}

/* ---- the request ------------------------------------------------------------------------ */

/* InstrumentationScope: nothing of it is kept, but its strings must be valid UTF-8. The
 * per-record limits do not apply to it; the depth bound only keeps the recursion short (upb's
 * own limit is 100 levels). */
static int check_scope(StrCache *cache, Buf *b) {
    static const Limits unlimited = {0, PY_SSIZE_T_MAX, PY_SSIZE_T_MAX, 64, 0, PY_SSIZE_T_MAX};
    const Limits *limits = &unlimited;
    uint32_t field;
    int wire_type;
    while (b->p < b->end) {
        if (read_tag(b, &field, &wire_type) != OK) return BAIL;
        if (field == 1 || field == 2) {
            if (wire_type != WT_LEN) return BAIL;
            int rc = check_utf8(b);
            if (rc != OK) return rc;
        } else if (field == 3) {
            Buf kv;
            if (wire_type != WT_LEN || read_len(b, &kv) != OK) return BAIL;
            PyObject *scratch = PyDict_New();
            if (scratch == NULL) return FAIL;
            int rc = key_value(cache, &kv, 1, limits, scratch);
            Py_DECREF(scratch);
            if (rc != OK) return rc;
        } else if ((field == 4 && wire_type != WT_VARINT) || skip(b, wire_type) != OK) {
            return BAIL;
        }
    }
    return OK;
}

typedef struct {
    PyObject *attributes; /* the resource's attributes as the canonical record starts them */
    PyObject *service;    /* borrowed from attributes, or NULL */
    Py_ssize_t count;     /* attribute entries sent, for the per-record limit */
} Resource;

static PyObject *S_SERVICE, *S_ENVIRONMENT, *S_OLD_ENVIRONMENT, *S_EVENT_NAME, *S_EVENT_DOT_NAME,
    *S_TIME, *S_OBSERVED, *S_TRACE_ID, *S_SPAN_ID, *S_SEVERITY_NUMBER, *S_SEVERITY_TEXT, *S_BODY,
    *S_SIGNAL, *S_LOGS;

static int resource(StrCache *cache, Buf *b, const Limits *limits, Resource *out) {
    uint32_t field;
    int wire_type;
    out->attributes = PyDict_New();
    out->service = NULL;
    out->count = 0;
    if (out->attributes == NULL) return FAIL;
    while (b != NULL && b->p < b->end) {
        if (read_tag(b, &field, &wire_type) != OK) return BAIL;
        if (field == 1) {
            Buf kv;
            if (wire_type != WT_LEN || read_len(b, &kv) != OK) return BAIL;
            int rc = key_value(cache, &kv, 1, limits, out->attributes);
            if (rc != OK) return rc;
            out->count++;
        } else if (field == 3 || (field == 2 && wire_type != WT_VARINT)) {
            return BAIL; /* entity references: rare, left to the Python path */
        } else if (skip(b, wire_type) != OK) {
            return BAIL;
        }
    }
    if (out->count > limits->max_attributes) return BAIL;
    int has = PyDict_Contains(out->attributes, S_ENVIRONMENT);
    if (has < 0) return FAIL;
    if (!has) {
        PyObject *old = PyDict_GetItemWithError(out->attributes, S_OLD_ENVIRONMENT);
        if (old == NULL && PyErr_Occurred()) return FAIL;
        if (old != NULL && PyDict_SetItem(out->attributes, S_ENVIRONMENT, old) < 0) return FAIL;
    }
    out->service = PyDict_GetItemWithError(out->attributes, S_SERVICE);
    if (out->service == NULL && PyErr_Occurred()) return FAIL;
    if (out->service == Py_None) out->service = NULL; /* canonical_logs drops a None service */
    return OK;
}

static int set_new(PyObject *dict, PyObject *key, PyObject *value) {
    if (value == NULL) return FAIL;
    int rc = PyDict_SetItem(dict, key, value);
    Py_DECREF(value);
    return rc < 0 ? FAIL : OK;
}

static int log_record(StrCache *cache, Buf *b, const Resource *res, const Limits *limits,
                      PyObject *records) {
    uint32_t field;
    int wire_type;
    unsigned seen = 0; /* singular length-delimited fields met, by field number bit */
    uint64_t time = 0, observed = 0, severity = 0;
    Buf trace_id = {b->p, b->p}, span_id = {b->p, b->p}, severity_text = {b->p, b->p},
        event_name = {b->p, b->p}, body = {NULL, NULL};
    Py_ssize_t count = res->count;
    PyObject *record = PyDict_Copy(res->attributes);
    if (record == NULL) return FAIL;
    int rc = BAIL;
    while (b->p < b->end) {
        if (read_tag(b, &field, &wire_type) != OK) goto done;
        switch (field) {
            case 1: case 11:
                if (wire_type != WT_I64 || read_fixed64(b, field == 1 ? &time : &observed) != OK)
                    goto done;
                break;
            case 2:
                if (wire_type != WT_VARINT || read_varint(b, &severity) != OK) goto done;
                break;
            case 3: case 5: case 9: case 10: case 12: {
                Buf *target = field == 3    ? &severity_text
                              : field == 5  ? &body
                              : field == 9  ? &trace_id
                              : field == 10 ? &span_id
                                            : &event_name;
                /* sent twice: protobuf merges (body) or checks both (strings); left to Python */
                if (wire_type != WT_LEN || (seen & (1u << field))) goto done;
                seen |= 1u << field;
                if (read_len(b, target) != OK) goto done;
                break;
            }
            case 6: {
                Buf kv;
                if (wire_type != WT_LEN || read_len(b, &kv) != OK) goto done;
                if ((rc = key_value(cache, &kv, 1, limits, record)) != OK) goto done;
                rc = BAIL;
                count++;
                break;
            }
            case 7:
                if (wire_type != WT_VARINT || skip(b, wire_type) != OK) goto done;
                break;
            case 8:
                if (wire_type != WT_I32 || skip(b, wire_type) != OK) goto done;
                break;
            default:
                if (skip(b, wire_type) != OK) goto done;
        }
    }
    if (count > limits->max_attributes) goto done;

    /* the same fields, in the same order, as canonical_logs in canonical.py */
    if (res->service == NULL) {
        if (PyDict_DelItem(record, S_SERVICE) < 0) {
            if (!PyErr_ExceptionMatches(PyExc_KeyError)) goto fail;
            PyErr_Clear();
        }
    } else if (PyDict_SetItem(record, S_SERVICE, res->service) < 0) {
        goto fail;
    }
    PyObject *name = NULL;
    if (event_name.end > event_name.p) {
        if ((rc = make_str(cache, event_name.p, event_name.end - event_name.p, &name)) != OK)
            goto done;
        rc = BAIL;
    } else {
        name = PyDict_GetItemWithError(record, S_EVENT_DOT_NAME);
        if (name == NULL && PyErr_Occurred()) goto fail;
        Py_XINCREF(name);
    }
    if (name != NULL) {
        int truthy = PyObject_IsTrue(name);
        if (truthy < 0 || (truthy && PyDict_SetItem(record, S_EVENT_NAME, name) < 0)) {
            Py_DECREF(name);
            goto fail;
        }
        Py_DECREF(name);
    }
    if (set_new(record, S_TIME, PyLong_FromUnsignedLongLong(time ? time : observed)) != OK ||
        set_new(record, S_OBSERVED, PyLong_FromUnsignedLongLong(observed)) != OK)
        goto fail;
    if (trace_id.end > trace_id.p &&
        set_new(record, S_TRACE_ID, hex_str(trace_id.p, trace_id.end - trace_id.p)) != OK)
        goto fail;
    if (span_id.end > span_id.p &&
        set_new(record, S_SPAN_ID, hex_str(span_id.p, span_id.end - span_id.p)) != OK)
        goto fail;
    if ((int32_t)severity != 0 &&
        set_new(record, S_SEVERITY_NUMBER, PyLong_FromLong((int32_t)severity)) != OK)
        goto fail;
    if (severity_text.end > severity_text.p) {
        PyObject *text;
        if ((rc = make_str(cache, severity_text.p, severity_text.end - severity_text.p, &text)) !=
            OK)
            goto done;
        rc = BAIL;
        if (set_new(record, S_SEVERITY_TEXT, text) != OK) goto fail;
    }
    if (seen & (1u << 5)) {
        PyObject *value;
        if ((rc = any_value(cache, &body, 1, limits, &value)) != OK) goto done;
        rc = BAIL;
        if (value == Py_None) {
            Py_DECREF(value);
        } else if (set_new(record, S_BODY, value) != OK) {
            goto fail;
        }
    }
    if (PyDict_SetItem(record, S_SIGNAL, S_LOGS) < 0 || PyList_Append(records, record) < 0)
        goto fail;
    Py_DECREF(record);
    return OK;
fail:
    rc = FAIL;
done:
    Py_DECREF(record);
    return rc;
}

static int scope_logs(StrCache *cache, Buf *b, const Resource *res, Limits *limits,
                      PyObject *records) {
    uint32_t field;
    int wire_type, scopes = 0, rc;
    while (b->p < b->end) {
        if (read_tag(b, &field, &wire_type) != OK) return BAIL;
        if (field >= 1 && field <= 3 && wire_type != WT_LEN) return BAIL;
        if (field == 1) {
            Buf scope;
            if (++scopes > 1 || read_len(b, &scope) != OK) return BAIL;
            if ((rc = check_scope(cache, &scope)) != OK) return rc;
        } else if (field == 2) {
            Buf record;
            if (read_len(b, &record) != OK) return BAIL;
            if (++limits->records > limits->max_records) return BAIL;
            if ((rc = log_record(cache, &record, res, limits, records)) != OK) return rc;
        } else if (field == 3) {
            if ((rc = check_utf8(b)) != OK) return rc;
        } else if (skip(b, wire_type) != OK) {
            return BAIL;
        }
    }
    return OK;
}

static int resource_logs(StrCache *cache, Buf b, Limits *limits, PyObject *records) {
    /* the resource may come after its scopes on the wire: find it first */
    uint32_t field;
    int wire_type, resources = 0, rc;
    Buf scan = b, found = {NULL, NULL};
    while (scan.p < scan.end) {
        if (read_tag(&scan, &field, &wire_type) != OK) return BAIL;
        if (field >= 1 && field <= 3 && wire_type != WT_LEN) return BAIL;
        if (field == 1) {
            if (++resources > 1 || read_len(&scan, &found) != OK) return BAIL;
        } else if (field == 3) {
            if ((rc = check_utf8(&scan)) != OK) return rc;
        } else if (skip(&scan, wire_type) != OK) {
            return BAIL;
        }
    }
    Resource res;
    rc = resource(cache, resources ? &found : NULL, limits, &res);
    while (rc == OK && b.p < b.end) {
        if (read_tag(&b, &field, &wire_type) != OK) {
            rc = BAIL;
            break;
        }
        if (field == 2) {
            Buf scope;
            if (read_len(&b, &scope) != OK) {
                rc = BAIL;
                break;
            }
            rc = scope_logs(cache, &scope, &res, limits, records);
        } else if (skip(&b, wire_type) != OK) {
            rc = BAIL;
        }
    }
    Py_XDECREF(res.attributes);
    return rc;
}

static PyObject *canonical_logs(PyObject *self, PyObject *args) {
    Py_buffer body;
    Limits limits = {0};
    if (!PyArg_ParseTuple(args, "y*nnnin", &body, &limits.max_records, &limits.max_attributes,
                          &limits.max_string, &limits.max_depth, &limits.max_key))
        return NULL;
    StrCache *cache = PyMem_Calloc(1, sizeof(StrCache));
    PyObject *records = cache ? PyList_New(0) : NULL;
    int rc = records ? OK : FAIL;
    Buf b = {(const uint8_t *)body.buf, (const uint8_t *)body.buf + body.len};
    uint32_t field;
    int wire_type;
    while (rc == OK && b.p < b.end) {
        if (read_tag(&b, &field, &wire_type) != OK) {
            rc = BAIL;
        } else if (field == 1) {
            Buf rl;
            rc = wire_type == WT_LEN && read_len(&b, &rl) == OK
                     ? resource_logs(cache, rl, &limits, records)
                     : BAIL;
        } else if (skip(&b, wire_type) != OK) {
            rc = BAIL;
        }
    }
    if (cache != NULL) {
        cache_clear(cache);
        PyMem_Free(cache);
    } else {
        PyErr_NoMemory();
    }
    PyBuffer_Release(&body);
    if (rc == OK) return records;
    Py_XDECREF(records);
    if (rc == FAIL) return NULL;
    Py_RETURN_NONE;
}

static PyMethodDef methods[] = {
    {"canonical_logs", canonical_logs, METH_VARARGS,
     "canonical_logs(body, max_records, max_attributes, max_string_bytes, max_depth,\n"
     "               max_key_bytes)\n--\n\n"
     "The canonical records of an ExportLogsServiceRequest, or None when the Python path must\n"
     "decide (malformed body, a record over a limit, protobuf features not handled here)."},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef module = {PyModuleDef_HEAD_INIT, "_logs_pb", NULL, -1, methods};

PyMODINIT_FUNC PyInit__logs_pb(void) {
    struct {
        PyObject **slot;
        const char *text;
    } names[] = {
        {&S_SERVICE, "service.name"},
        {&S_ENVIRONMENT, "deployment.environment.name"},
        {&S_OLD_ENVIRONMENT, "deployment.environment"},
        {&S_EVENT_NAME, "event_name"},
        {&S_EVENT_DOT_NAME, "event.name"},
        {&S_TIME, "time_unix_nano"},
        {&S_OBSERVED, "observed_time_unix_nano"},
        {&S_TRACE_ID, "trace_id"},
        {&S_SPAN_ID, "span_id"},
        {&S_SEVERITY_NUMBER, "severity_number"},
        {&S_SEVERITY_TEXT, "severity_text"},
        {&S_BODY, "body"},
        {&S_SIGNAL, "signal"},
        {&S_LOGS, "logs"},
        {&S_NAN, "NaN"},
        {&S_INFINITY, "Infinity"},
        {&S_MINUS_INFINITY, "-Infinity"},
    };
    for (size_t i = 0; i < sizeof names / sizeof names[0]; i++) {
        *names[i].slot = PyUnicode_InternFromString(names[i].text);
        if (*names[i].slot == NULL) return NULL;
    }
    return PyModule_Create(&module);
}
