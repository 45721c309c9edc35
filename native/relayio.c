/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * dtmfguard.relay._relay_native: the relay's per-packet socket work in C (Linux).
 *
 * Why C: a relay carrying N calls reads 2N datagrams per 20 ms tick and writes 2N.  In Python each
 * packet paid an epoll event tuple, a dispatch, a handler call, a bytes object, a header parse and a
 * queue entry (about 2-3 us on top of the syscall); the agent -> customer pass-through is bytes in,
 * bytes out and needs none of it.  Here one call per drain round reads every ready socket that has a
 * fast route:
 *
 *   Fwd(in_fd, out_fd, (host, port[, flowinfo, scope_id]))
 *       a pass-through: every datagram read on in_fd that looks like RTP (>= 12 bytes, version 2) is sent
 *       on out_fd to the address, byte for byte (the relay's agent -> customer direction); anything else
 *       is counted and dropped.  Counters: rx_packets, rx_bytes (what was read), tx_packets, tx_bytes
 *       (what was sent), rx_errors (not RTP), tx_errors (the send failed).
 *
 *   Cust(in_fd, audio_pt, law, token)
 *       a customer's G.711 stream: a datagram with the common RTP header (first byte 0x80: version 2, no
 *       padding, extension or CSRC), payload type audio_pt and a payload is decoded (law 0: mu-law, 1:
 *       A-law, with the tables given to set_decode_tables) into one int16 buffer shared by every packet of
 *       the round; anything else is handed back whole to Python.  Counters: rx_packets, rx_bytes.
 *
 * drain(epfd, routes, maxevents) -> (events, slow_fds, audio, pcm, other)
 *
 *   One epoll_wait(epfd, timeout 0) (level-triggered; events: how many it named), then one datagram per
 *   ready socket with a route
 *   (routes: dict fd -> Fwd | Cust).  slow_fds: ready fds without a route (Python's handlers read those);
 *   audio: [(token, ssrc, timestamp, first sample in pcm, samples)]; pcm: bytearray of int16 (native
 *   order); other: [(token, datagram bytes)] (a customer packet Python must look at: telephone-event,
 *   another payload type, an unusual header).  Nothing raises for what arrives on a socket.  The counters
 *   of every route are plain integers the relay folds into its own (and zeroes) when it reads them.
 *
 * send_frames(outs, payloads, tables) -> failed
 *
 *   The relay's own stream to each agent: for outs[i] (an Out: fd, destination, payload type, SSRC,
 *   sequence, timestamp, marker) builds the 12-byte RTP header, appends payloads[i] (bytes: sent as they
 *   are; or a 1-D int16 array of samples, encoded with the Out's law through tables[law], an encoding
 *   table of 65536 bytes indexed by the sample's 16-bit pattern), sends it, and advances the sequence
 *   (+1) and timestamp (+160, one 20 ms tick), clearing the marker.  A failed send is counted in the Out
 *   (errors).  failed: the indices whose payload was not usable (nothing sent, stream unchanged).
 *
 * The GIL is kept (a drain takes tens of microseconds).
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include "structmember.h"

#ifndef __linux__
#error "dtmfguard.relay._relay_native needs Linux (epoll)"
#endif

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdint.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>

#define MAXDGRAM 2048
#define MAXEVENTS 4096
#define FRAME_TS 160

static int16_t dec_tables[2][256];
static int tables_set = 0;
/* the decoded samples of one drain round, kept between rounds (grown, never shrunk): a round's bytearray is
 * one copy of what was used */
static int16_t *scratch = NULL;
static Py_ssize_t scratch_cap = 0;

static int scratch_reserve(Py_ssize_t need)
{
    if (need <= scratch_cap)
        return 0;
    Py_ssize_t cap = scratch_cap ? scratch_cap : 65536;
    while (cap < need)
        cap *= 2;
    int16_t *p = PyMem_RawRealloc(scratch, (size_t)cap * sizeof(int16_t));
    if (!p) {
        PyErr_NoMemory();
        return -1;
    }
    scratch = p;
    scratch_cap = cap;
    return 0;
}

/* (host, port) or (host, port, flowinfo, scope_id) -> sockaddr; 0 on success, -1 with an exception */
static int to_sockaddr(PyObject *addr, struct sockaddr_storage *ss, socklen_t *len)
{
    const char *host;
    int port;
    unsigned int flow = 0, scope = 0;
    if (!PyTuple_Check(addr)) {
        PyErr_SetString(PyExc_TypeError, "address must be a tuple");
        return -1;
    }
    if (!PyArg_ParseTuple(addr, "si|II", &host, &port, &flow, &scope))
        return -1;
    if (port < 0 || port > 65535) {
        PyErr_SetString(PyExc_ValueError, "port out of range");
        return -1;
    }
    memset(ss, 0, sizeof(*ss));
    struct sockaddr_in *a4 = (struct sockaddr_in *)ss;
    struct sockaddr_in6 *a6 = (struct sockaddr_in6 *)ss;
    if (inet_pton(AF_INET, host, &a4->sin_addr) == 1) {
        a4->sin_family = AF_INET;
        a4->sin_port = htons((uint16_t)port);
        *len = sizeof(*a4);
        return 0;
    }
    if (inet_pton(AF_INET6, host, &a6->sin6_addr) == 1) {
        a6->sin6_family = AF_INET6;
        a6->sin6_port = htons((uint16_t)port);
        a6->sin6_flowinfo = htonl(flow);
        a6->sin6_scope_id = scope;
        *len = sizeof(*a6);
        return 0;
    }
    PyErr_SetString(PyExc_ValueError, "not a numeric IPv4 or IPv6 address");
    return -1;
}

/* ---- Fwd ----------------------------------------------------------------------------------------- */
typedef struct {
    PyObject_HEAD
    int in_fd, out_fd;
    struct sockaddr_storage dest;
    socklen_t dest_len;
    long long rx_packets, rx_bytes, tx_packets, tx_bytes, rx_errors, tx_errors;
} Fwd;

static int Fwd_init(Fwd *self, PyObject *args, PyObject *kw)
{
    PyObject *addr;
    if (!PyArg_ParseTuple(args, "iiO", &self->in_fd, &self->out_fd, &addr))
        return -1;
    return to_sockaddr(addr, &self->dest, &self->dest_len);
}

static PyMemberDef Fwd_members[] = {
    {"in_fd", T_INT, offsetof(Fwd, in_fd), READONLY, NULL},
    {"rx_packets", T_LONGLONG, offsetof(Fwd, rx_packets), 0, NULL},
    {"rx_bytes", T_LONGLONG, offsetof(Fwd, rx_bytes), 0, NULL},
    {"tx_packets", T_LONGLONG, offsetof(Fwd, tx_packets), 0, NULL},
    {"tx_bytes", T_LONGLONG, offsetof(Fwd, tx_bytes), 0, NULL},
    {"rx_errors", T_LONGLONG, offsetof(Fwd, rx_errors), 0, NULL},
    {"tx_errors", T_LONGLONG, offsetof(Fwd, tx_errors), 0, NULL},
    {NULL}};

static PyTypeObject FwdType = {
    PyVarObject_HEAD_INIT(NULL, 0).tp_name = "dtmfguard.relay._relay_native.Fwd",
    .tp_basicsize = sizeof(Fwd),
    .tp_flags = Py_TPFLAGS_DEFAULT,
    .tp_new = PyType_GenericNew,
    .tp_init = (initproc)Fwd_init,
    .tp_members = Fwd_members,
    .tp_doc = "Fwd(in_fd, out_fd, address): a byte-for-byte RTP pass-through route",
};

/* ---- Cust ---------------------------------------------------------------------------------------- */
typedef struct {
    PyObject_HEAD
    int in_fd, audio_pt, law;
    PyObject *token;
    long long rx_packets, rx_bytes;
} Cust;

static int Cust_init(Cust *self, PyObject *args, PyObject *kw)
{
    PyObject *token;
    if (!PyArg_ParseTuple(args, "iiiO", &self->in_fd, &self->audio_pt, &self->law, &token))
        return -1;
    if (self->law != 0 && self->law != 1) {
        PyErr_SetString(PyExc_ValueError, "law must be 0 (mu-law) or 1 (A-law)");
        return -1;
    }
    if (self->audio_pt < 0 || self->audio_pt > 127) {
        PyErr_SetString(PyExc_ValueError, "payload type out of range");
        return -1;
    }
    Py_INCREF(token);
    Py_XSETREF(self->token, token);
    return 0;
}

static int Cust_traverse(Cust *self, visitproc visit, void *arg)
{
    Py_VISIT(self->token);
    return 0;
}

static int Cust_clear(Cust *self)
{
    Py_CLEAR(self->token);
    return 0;
}

static void Cust_dealloc(Cust *self)
{
    PyObject_GC_UnTrack(self);
    Cust_clear(self);
    Py_TYPE(self)->tp_free((PyObject *)self);
}

static PyMemberDef Cust_members[] = {
    {"in_fd", T_INT, offsetof(Cust, in_fd), READONLY, NULL},
    {"audio_pt", T_INT, offsetof(Cust, audio_pt), READONLY, NULL},
    {"law", T_INT, offsetof(Cust, law), READONLY, NULL},
    {"token", T_OBJECT, offsetof(Cust, token), READONLY, NULL},
    {"rx_packets", T_LONGLONG, offsetof(Cust, rx_packets), 0, NULL},
    {"rx_bytes", T_LONGLONG, offsetof(Cust, rx_bytes), 0, NULL},
    {NULL}};

static PyTypeObject CustType = {
    PyVarObject_HEAD_INIT(NULL, 0).tp_name = "dtmfguard.relay._relay_native.Cust",
    .tp_basicsize = sizeof(Cust),
    .tp_flags = Py_TPFLAGS_DEFAULT | Py_TPFLAGS_HAVE_GC,
    .tp_new = PyType_GenericNew,
    .tp_init = (initproc)Cust_init,
    .tp_dealloc = (destructor)Cust_dealloc,
    .tp_traverse = (traverseproc)Cust_traverse,
    .tp_clear = (inquiry)Cust_clear,
    .tp_members = Cust_members,
    .tp_doc = "Cust(in_fd, audio_pt, law, token): a customer's G.711 stream, decoded in the drain",
};

/* ---- Out ----------------------------------------------------------------------------------------- */
typedef struct {
    PyObject_HEAD
    int fd, pt, law, marker;
    unsigned int ssrc, seq, ts;
    struct sockaddr_storage dest;
    socklen_t dest_len;
    long long tx_packets, tx_bytes, errors;
} Out;

static int Out_init(Out *self, PyObject *args, PyObject *kw)
{
    PyObject *addr;
    if (!PyArg_ParseTuple(args, "iOiiIII", &self->fd, &addr, &self->pt, &self->law, &self->ssrc, &self->seq,
                          &self->ts))
        return -1;
    if (self->pt < 0 || self->pt > 127 || self->law < -1 || self->law > 1) {
        PyErr_SetString(PyExc_ValueError, "payload type or law out of range");
        return -1;
    }
    self->seq &= 0xFFFF;
    return to_sockaddr(addr, &self->dest, &self->dest_len);
}

static PyMemberDef Out_members[] = {
    {"fd", T_INT, offsetof(Out, fd), READONLY, NULL},
    {"pt", T_INT, offsetof(Out, pt), READONLY, NULL},
    {"law", T_INT, offsetof(Out, law), READONLY, NULL},
    {"marker", T_INT, offsetof(Out, marker), 0, NULL},
    {"ssrc", T_UINT, offsetof(Out, ssrc), READONLY, NULL},
    {"seq", T_UINT, offsetof(Out, seq), READONLY, NULL},
    {"ts", T_UINT, offsetof(Out, ts), READONLY, NULL},
    {"tx_packets", T_LONGLONG, offsetof(Out, tx_packets), 0, NULL},
    {"tx_bytes", T_LONGLONG, offsetof(Out, tx_bytes), 0, NULL},
    {"errors", T_LONGLONG, offsetof(Out, errors), 0, NULL},
    {NULL}};

static PyTypeObject OutType = {
    PyVarObject_HEAD_INIT(NULL, 0).tp_name = "dtmfguard.relay._relay_native.Out",
    .tp_basicsize = sizeof(Out),
    .tp_flags = Py_TPFLAGS_DEFAULT,
    .tp_new = PyType_GenericNew,
    .tp_init = (initproc)Out_init,
    .tp_members = Out_members,
    .tp_doc = "Out(fd, address, pt, law, ssrc, seq, ts): the relay's own RTP stream to one agent",
};

/* ---- functions ----------------------------------------------------------------------------------- */
static PyObject *set_decode_tables(PyObject *mod, PyObject *args)
{
    Py_buffer u, a;
    if (!PyArg_ParseTuple(args, "y*y*", &u, &a))
        return NULL;
    if (u.len != 512 || a.len != 512) {
        PyBuffer_Release(&u);
        PyBuffer_Release(&a);
        PyErr_SetString(PyExc_ValueError, "decode tables must be 256 int16 each");
        return NULL;
    }
    memcpy(dec_tables[0], u.buf, 512);
    memcpy(dec_tables[1], a.buf, 512);
    tables_set = 1;
    PyBuffer_Release(&u);
    PyBuffer_Release(&a);
    Py_RETURN_NONE;
}

static PyObject *drain(PyObject *mod, PyObject *args)
{
    int epfd, maxevents;
    PyObject *routes;
    if (!PyArg_ParseTuple(args, "iO!i", &epfd, &PyDict_Type, &routes, &maxevents))
        return NULL;
    if (!tables_set) {
        PyErr_SetString(PyExc_RuntimeError, "set_decode_tables first");
        return NULL;
    }
    if (maxevents < 1)
        maxevents = 1;
    if (maxevents > MAXEVENTS)
        maxevents = MAXEVENTS;
    static struct epoll_event evs[MAXEVENTS];
    int n = epoll_wait(epfd, evs, maxevents, 0);
    if (n < 0) {
        if (errno == EINTR)
            n = 0;
        else
            return PyErr_SetFromErrno(PyExc_OSError);
    }
    PyObject *slow = PyList_New(0), *audio = PyList_New(0), *other = PyList_New(0);
    PyObject *pcm = NULL;
    if (!slow || !audio || !other)
        goto fail;
    Py_ssize_t used = 0; /* samples in scratch */
    unsigned char buf[MAXDGRAM];
    for (int i = 0; i < n; i++) {
        int fd = evs[i].data.fd;
        PyObject *key = PyLong_FromLong(fd);
        if (!key)
            goto fail;
        PyObject *route = PyDict_GetItemWithError(routes, key); /* borrowed */
        if (!route) {
            int err = PyErr_Occurred() != NULL;
            if (!err && PyList_Append(slow, key) < 0)
                err = 1;
            Py_DECREF(key);
            if (err)
                goto fail;
            continue;
        }
        Py_DECREF(key);
        if (Py_TYPE(route) == &FwdType) {
            Fwd *f = (Fwd *)route;
            ssize_t got = recv(f->in_fd, buf, sizeof buf, MSG_DONTWAIT);
            if (got < 0)
                continue;
            f->rx_packets++;
            f->rx_bytes += got;
            if (got >= 12 && (buf[0] >> 6) == 2) {
                if (sendto(f->out_fd, buf, (size_t)got, MSG_DONTWAIT, (struct sockaddr *)&f->dest, f->dest_len) < 0)
                    f->tx_errors++;
                else {
                    f->tx_packets++;
                    f->tx_bytes += got;
                }
            } else
                f->rx_errors++;
        } else if (Py_TYPE(route) == &CustType) {
            Cust *c = (Cust *)route;
            ssize_t got = recv(c->in_fd, buf, sizeof buf, MSG_DONTWAIT);
            if (got < 0)
                continue;
            c->rx_packets++;
            c->rx_bytes += got;
            if (got > 12 && buf[0] == 0x80 && (buf[1] & 0x7F) == c->audio_pt) {
                unsigned long ts = ((unsigned long)buf[4] << 24) | ((unsigned long)buf[5] << 16) |
                                   ((unsigned long)buf[6] << 8) | buf[7];
                unsigned long ssrc = ((unsigned long)buf[8] << 24) | ((unsigned long)buf[9] << 16) |
                                     ((unsigned long)buf[10] << 8) | buf[11];
                Py_ssize_t ns = got - 12;
                if (scratch_reserve(used + ns) < 0)
                    goto fail;
                int16_t *dst = scratch + used;
                const int16_t *tab = dec_tables[c->law];
                for (Py_ssize_t k = 0; k < ns; k++)
                    dst[k] = tab[buf[12 + k]];
                PyObject *item = Py_BuildValue("(Okknn)", c->token, ssrc, ts, used, ns);
                used += ns;
                if (!item || PyList_Append(audio, item) < 0) {
                    Py_XDECREF(item);
                    goto fail;
                }
                Py_DECREF(item);
            } else {
                PyObject *item = Py_BuildValue("(Oy#)", c->token, (const char *)buf, (Py_ssize_t)got);
                if (!item || PyList_Append(other, item) < 0) {
                    Py_XDECREF(item);
                    goto fail;
                }
                Py_DECREF(item);
            }
        } else {
            PyErr_SetString(PyExc_TypeError, "a route must be a Fwd or a Cust");
            goto fail;
        }
    }
    pcm = PyByteArray_FromStringAndSize(used ? (const char *)scratch : NULL, used * 2);
    if (!pcm)
        goto fail;
    return Py_BuildValue("(iNNNN)", n, slow, audio, pcm, other);
fail:
    Py_XDECREF(slow);
    Py_XDECREF(audio);
    Py_XDECREF(other);
    Py_XDECREF(pcm);
    return NULL;
}

/* one payload into pkt + 12: bytes as they are, or 1-D int16 samples encoded with the Out's law; the
 * payload's length in bytes, or -1 (not usable: nothing is written, no exception is left set) */
static Py_ssize_t put_payload(Out *out, PyObject *p, const unsigned char *tabs[2], unsigned char *dst)
{
    if (PyBytes_Check(p)) {
        Py_ssize_t len = PyBytes_GET_SIZE(p);
        if (len > MAXDGRAM)
            return -1;
        memcpy(dst, PyBytes_AS_STRING(p), (size_t)len);
        return len;
    }
    if (out->law < 0)
        return -1;
    Py_buffer b;
    if (PyObject_GetBuffer(p, &b, PyBUF_RECORDS_RO) < 0) {
        PyErr_Clear();
        return -1;
    }
    Py_ssize_t len = -1;
    if (b.ndim == 1 && b.itemsize == 2 && b.format &&
        (!strcmp(b.format, "h") || !strcmp(b.format, "<h") || !strcmp(b.format, "=h")) && b.shape[0] <= MAXDGRAM) {
        len = b.shape[0];
        Py_ssize_t stride = b.strides ? b.strides[0] : 2;
        const char *s = (const char *)b.buf;
        const unsigned char *tab = tabs[out->law];
        for (Py_ssize_t k = 0; k < len; k++) {
            uint16_t v;
            memcpy(&v, s + k * stride, 2);
            dst[k] = tab[v];
        }
    }
    PyBuffer_Release(&b);
    return len;
}

static PyObject *send_frames(PyObject *mod, PyObject *args)
{
    PyObject *outs, *payloads, *tables;
    if (!PyArg_ParseTuple(args, "O!O!O!", &PyList_Type, &outs, &PyList_Type, &payloads, &PyTuple_Type, &tables))
        return NULL;
    Py_ssize_t n = PyList_GET_SIZE(outs);
    if (PyList_GET_SIZE(payloads) != n) {
        PyErr_SetString(PyExc_ValueError, "outs and payloads differ in length");
        return NULL;
    }
    if (PyTuple_GET_SIZE(tables) != 2) {
        PyErr_SetString(PyExc_ValueError, "tables: (mu-law, A-law) encoding tables");
        return NULL;
    }
    for (Py_ssize_t i = 0; i < n; i++)
        if (Py_TYPE(PyList_GET_ITEM(outs, i)) != &OutType) {
            PyErr_SetString(PyExc_TypeError, "outs must hold Out objects");
            return NULL;
        }
    Py_buffer tb[2];
    for (int k = 0; k < 2; k++) {
        if (PyObject_GetBuffer(PyTuple_GET_ITEM(tables, k), &tb[k], PyBUF_C_CONTIGUOUS) < 0) {
            if (k)
                PyBuffer_Release(&tb[0]);
            return NULL;
        }
    }
    if (tb[0].len != 65536 || tb[1].len != 65536) {
        PyBuffer_Release(&tb[0]);
        PyBuffer_Release(&tb[1]);
        PyErr_SetString(PyExc_ValueError, "an encoding table has 65536 bytes");
        return NULL;
    }
    const unsigned char *tabs[2] = {(const unsigned char *)tb[0].buf, (const unsigned char *)tb[1].buf};
    unsigned char pkt[12 + MAXDGRAM];
    PyObject *failed = PyList_New(0);
    if (!failed)
        goto done;
    for (Py_ssize_t i = 0; i < n; i++) {
        Out *out = (Out *)PyList_GET_ITEM(outs, i);
        Py_ssize_t len = put_payload(out, PyList_GET_ITEM(payloads, i), tabs, pkt + 12);
        if (len < 0) { /* nothing sent, the stream unchanged: the caller sends silence instead */
            PyObject *idx = PyLong_FromSsize_t(i);
            if (!idx || PyList_Append(failed, idx) < 0) {
                Py_XDECREF(idx);
                Py_CLEAR(failed);
                goto done;
            }
            Py_DECREF(idx);
            continue;
        }
        pkt[0] = 0x80;
        pkt[1] = (unsigned char)((out->marker ? 0x80 : 0) | (out->pt & 0x7F));
        pkt[2] = (unsigned char)(out->seq >> 8);
        pkt[3] = (unsigned char)out->seq;
        pkt[4] = (unsigned char)(out->ts >> 24);
        pkt[5] = (unsigned char)(out->ts >> 16);
        pkt[6] = (unsigned char)(out->ts >> 8);
        pkt[7] = (unsigned char)out->ts;
        pkt[8] = (unsigned char)(out->ssrc >> 24);
        pkt[9] = (unsigned char)(out->ssrc >> 16);
        pkt[10] = (unsigned char)(out->ssrc >> 8);
        pkt[11] = (unsigned char)out->ssrc;
        out->marker = 0;
        out->seq = (out->seq + 1) & 0xFFFF;
        out->ts = (out->ts + FRAME_TS) & 0xFFFFFFFFu; /* 20 ms at the 8000 Hz RTP clock, as the relay's tick */
        if (sendto(out->fd, pkt, (size_t)(12 + len), MSG_DONTWAIT, (struct sockaddr *)&out->dest, out->dest_len) < 0)
            out->errors++;
        else {
            out->tx_packets++;
            out->tx_bytes += 12 + len;
        }
    }
done:
    PyBuffer_Release(&tb[0]);
    PyBuffer_Release(&tb[1]);
    return failed;
}

static PyMethodDef methods[] = {
    {"set_decode_tables", set_decode_tables, METH_VARARGS, "set_decode_tables(mu_law, a_law): 256 int16 each"},
    {"drain", drain, METH_VARARGS, "drain(epfd, routes, maxevents) -> (events, slow_fds, audio, pcm, other)"},
    {"send_frames", send_frames, METH_VARARGS, "send_frames(outs, payloads, tables) -> indices not sent"},
    {NULL, NULL, 0, NULL}};

static struct PyModuleDef moduledef = {PyModuleDef_HEAD_INIT, "_relay_native",
                                       "The relay's per-packet socket work in C (see native/relayio.c).", -1,
                                       methods};

PyMODINIT_FUNC PyInit__relay_native(void)
{
    if (PyType_Ready(&FwdType) < 0 || PyType_Ready(&CustType) < 0 || PyType_Ready(&OutType) < 0)
        return NULL;
    PyObject *m = PyModule_Create(&moduledef);
    if (!m)
        return NULL;
    Py_INCREF(&FwdType);
    Py_INCREF(&CustType);
    Py_INCREF(&OutType);
    if (PyModule_AddObject(m, "Fwd", (PyObject *)&FwdType) < 0 ||
        PyModule_AddObject(m, "Cust", (PyObject *)&CustType) < 0 ||
        PyModule_AddObject(m, "Out", (PyObject *)&OutType) < 0) {
        Py_DECREF(m);
        return NULL;
    }
    return m;
}
