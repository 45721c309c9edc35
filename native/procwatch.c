/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * dtmfguard.server._procwatch: a supervised worker's last line of defence when its supervisor dies (Linux/POSIX).
 *
 * Why C: a worker whose supervisor died must leave (it holds the SIP ports the next supervisor needs).
 * PR_SET_PDEATHSIG asks the main thread to stop and a Python thread (server.procs.exit_watch) bounds the stop,
 * but both need the GIL.  A worker whose threads deadlock on it (a pjsua2 call holding the GIL waits on a pjsip
 * lock whose owner waits for the GIL: clean-clone run 62, no Python line ran after the supervisor's SIGKILL)
 * never runs either.  This thread never takes the GIL.
 *
 * start(parent_pid, poll_ms, deadline_ms) -> None
 *
 *   Starts one detached thread that checks every poll_ms whether parent_pid is still this process's parent;
 *   once it is not, it waits deadline_ms more (the graceful stop's time) and ends the process with _exit(1)
 *   if it is still there.  Calls still up lose their media: fail closed.  A second start() is refused
 *   (RuntimeError); bad values raise ValueError.
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>

#include <pthread.h>
#include <time.h>
#include <unistd.h>

static int started = 0;

struct watch {
    pid_t parent;
    long poll_ms;
    long deadline_ms;
};

static void sleep_ms(long ms)
{
    struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};
    while (nanosleep(&ts, &ts) != 0) {
        /* interrupted by a signal: sleep the rest */
    }
}

static void *watch_main(void *arg)
{
    struct watch w = *(struct watch *)arg;
    PyMem_RawFree(arg);
    while (getppid() == w.parent)
        sleep_ms(w.poll_ms);
    sleep_ms(w.deadline_ms);
    _exit(1);
    return NULL;
}

static PyObject *start(PyObject *self, PyObject *args)
{
    long parent, poll_ms, deadline_ms;
    (void)self;
    if (!PyArg_ParseTuple(args, "lll", &parent, &poll_ms, &deadline_ms))
        return NULL;
    if (parent <= 1 || poll_ms < 1 || poll_ms > 60000 || deadline_ms < 0 || deadline_ms > 3600000) {
        PyErr_SetString(PyExc_ValueError, "start(parent_pid > 1, 1 <= poll_ms <= 60000, 0 <= deadline_ms <= 3600000)");
        return NULL;
    }
    if (started) {
        PyErr_SetString(PyExc_RuntimeError, "the process watch is already running");
        return NULL;
    }
    struct watch *w = PyMem_RawMalloc(sizeof *w);
    if (w == NULL)
        return PyErr_NoMemory();
    w->parent = (pid_t)parent;
    w->poll_ms = poll_ms;
    w->deadline_ms = deadline_ms;
    pthread_attr_t attr;
    pthread_t tid;
    int rc = pthread_attr_init(&attr);
    if (rc == 0)
        rc = pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
    if (rc == 0)
        rc = pthread_create(&tid, &attr, watch_main, w);
    pthread_attr_destroy(&attr);
    if (rc != 0) {
        PyMem_RawFree(w);
        PyErr_SetString(PyExc_OSError, "cannot start the process watch thread");
        return NULL;
    }
    started = 1;
    Py_RETURN_NONE;
}

static PyMethodDef methods[] = {
    {"start", start, METH_VARARGS,
     "start(parent_pid, poll_ms, deadline_ms): _exit(1) deadline_ms after parent_pid stops being the parent "
     "(a thread that never takes the GIL)"},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef module = {PyModuleDef_HEAD_INIT, "_procwatch", NULL, -1, methods};

PyMODINIT_FUNC PyInit__procwatch(void)
{
    return PyModule_Create(&module);
}
