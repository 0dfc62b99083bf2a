// SPDX-License-Identifier: MIT
/*
 * kmallocmodule.c - the Python module `kmalloc`: libkmclient for Python
 * programs, built by meson's python module (python/meson.build).
 *
 * Two types. A Client is one km_client (one connection to kmallocd). A
 * Buffer is one grant of a Client: a kmalloc, kzalloc, vmalloc or kvmalloc
 * allocation, or an import of a handle. A Buffer exposes its memory through
 * the buffer protocol (memoryview, numpy.frombuffer, bytes(), file.readinto
 * ...), zero copy; it is read-only for read-only imports.
 *
 * Invariants, all kept with the GIL held:
 * - A Buffer holds a strong reference on its Client, so a Client outlives
 *   its Buffers; the Client lists the Buffers whose memory is live (ptr set)
 *   so that close() can end them (km_disconnect() gives everything back).
 * - A Buffer whose views (memoryviews, numpy arrays) are alive cannot be
 *   freed (BufferError, as bytearray refuses to resize): freeing would leave
 *   them pointing at memory the daemon may hand to someone else. A Client
 *   with such Buffers cannot be closed for the same reason.
 * - A Client belongs to the process that made it: a child forked from it
 *   (os.fork, multiprocessing's fork start method) would talk to the daemon
 *   on its parent's connection and free its parent's grants. There every
 *   use of the Client and of its Buffers raises RuntimeError, and their
 *   deallocation gives nothing back (the parent still holds it all).
 * - Library calls that may wait for the daemon run with the GIL released.
 *   Meanwhile the Client's and the Buffer's `busy` counts say so, and free()
 *   or close() from another thread is refused rather than raced.
 *
 * Errors from the library become OSError with its errno (the subclass
 * Python picks for it: PermissionError for EACCES, FileNotFoundError for
 * ENOENT...) and a message naming the call and the likely cause.
 */
#include "config.h"

#define PY_SSIZE_T_CLEAN
#include <Python.h>

#include <errno.h>
#include <limits.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "kmclient.h"

enum buffer_kind {
	BUFFER_KMALLOC,	 /* km_kmalloc / km_kzalloc: km_kfree */
	BUFFER_VMALLOC,	 /* km___vmalloc: km_vfree */
	BUFFER_KVMALLOC, /* km_kvmalloc: km_kvfree */
	BUFFER_IMPORT,	 /* km_import_flags: km_kvfree */
	BUFFER_KIND_MAX
};

static const char *const buffer_kind_names[BUFFER_KIND_MAX] = {
	[BUFFER_KMALLOC] = "kmalloc",
	[BUFFER_VMALLOC] = "vmalloc",
	[BUFFER_KVMALLOC] = "kvmalloc",
	[BUFFER_IMPORT] = "import",
};

struct buffer_obj;

struct client_obj {
	PyObject ob_base;
	km_client *c;		 /* NULL once closed */
	PyObject *socket;	 /* the path asked for, or None */
	unsigned int busy;	 /* calls on c running with the GIL released */
	pid_t pid;		 /* the process that connected */
	struct buffer_obj *live; /* Buffers whose memory is live */
};

struct buffer_obj {
	PyObject ob_base;
	struct client_obj *client; /* strong reference */
	void *ptr;		   /* NULL once freed */
	Py_ssize_t size;	   /* bytes */
	enum buffer_kind kind;
	bool readonly;
	unsigned int exports;		/* live views (Py_buffer) */
	unsigned int busy;		/* calls on ptr running with the GIL released */
	struct buffer_obj *prev, *next; /* in client->live while ptr != NULL */
};

static PyTypeObject client_type;
static PyTypeObject buffer_type;

/* ---- errors -------------------------------------------------------------- */

/* What an errno means for a given call, when strerror() would mislead
 * (ENOENT is not "No such file or directory" for a handle). */
struct errno_hint {
	const char *call;
	int err;
	const char *text;
};

static const struct errno_hint errno_hints[] = {
	{ "connect", ENOENT, "no kmallocd listens there" },
	{ "connect", ECONNREFUSED, "no kmallocd listens there" },
	{ "connect", EACCES, "kmallocd refuses this uid (allow list or connection limit)" },
	{ "connect", EPROTO, "protocol mismatch with kmallocd" },
	{ "import_handle", ENOENT, "no such handle, or the memory it named is gone" },
	{ "import_handle", EACCES,
	  "handle refused: revoked, expired, used up, meant for another uid, or naming memory of "
	  "another uid's domain that was not allocated with GFP_SHARED" },
	{ "revoke", ENOENT, "no such handle" },
	{ "revoke", EACCES, "the handle was exported by another uid" },
	{ "export", EINVAL, "this memory cannot be exported" },
	{ NULL, ENOMEM, "the pool cannot serve the request" },
	{ NULL, EDQUOT, "past one of this uid's limits (see kmctl limits)" },
	{ NULL, ECONNRESET, "kmallocd went away" },
	{ NULL, EPROTO, "protocol error with kmallocd" },
};

/* Raises OSError(err, "<call>: <text>"); OSError() picks the subclass for
 * err. Returns NULL for the caller to return. */
static PyObject *raise_errno(int err, const char *call, const char *detail)
{
	const char *text = NULL;
	PyObject *exc, *msg;
	size_t i;

	if (err == 0)
		err = EIO;
	for (i = 0; i < sizeof(errno_hints) / sizeof(errno_hints[0]) && !text; i++) {
		const struct errno_hint *h = &errno_hints[i];

		if (h->err == err && (!h->call || strcmp(h->call, call) == 0))
			text = h->text;
	}
	if (!text)
		text = strerror(err);
	if (detail)
		msg = PyUnicode_FromFormat("%s %s: %s", call, detail, text);
	else
		msg = PyUnicode_FromFormat("%s: %s", call, text);
	if (!msg)
		return NULL;
	exc = PyObject_CallFunction(PyExc_OSError, "iO", err, msg);
	Py_DECREF(msg);
	if (exc) {
		PyErr_SetObject((PyObject *)Py_TYPE(exc), exc);
		Py_DECREF(exc);
	}
	return NULL;
}

/* ---- handles ------------------------------------------------------------- */

/* "O&" converter: a handle from its text (str, or bytes-like holding the
 * 64 hex digits, as read from a pipe: surrounding white space is fine) or
 * its 32 raw bytes. Malformed: ValueError; another type: TypeError. */
static int handle_converter(PyObject *obj, void *out)
{
	km_handle *h = out;
	Py_buffer view;
	char *text;
	int ret;

	if (PyUnicode_Check(obj)) {
		const char *s = PyUnicode_AsUTF8(obj);

		if (!s)
			return 0;
		if (strlen(s) == (size_t)PyUnicode_GET_LENGTH(obj) && km_handle_parse(s, h) == 0)
			return 1;
		PyErr_Format(PyExc_ValueError,
			     "not a kmalloc handle: %R (want 64 hex digits, or 32 bytes)", obj);
		return 0;
	}
	if (PyObject_GetBuffer(obj, &view, PyBUF_SIMPLE) < 0) {
		PyErr_Clear();
		PyErr_Format(PyExc_TypeError,
			     "a kmalloc handle is a str of 64 hex digits or 32 bytes, not %.100s",
			     Py_TYPE(obj)->tp_name);
		return 0;
	}
	if (view.len == (Py_ssize_t)sizeof(h->bytes)) {
		memcpy(h->bytes, view.buf, sizeof(h->bytes));
		PyBuffer_Release(&view);
		return 1;
	}
	text = PyMem_Malloc(view.len + 1);
	if (!text) {
		PyBuffer_Release(&view);
		PyErr_NoMemory();
		return 0;
	}
	memcpy(text, view.buf, view.len);
	text[view.len] = '\0';
	ret = strlen(text) == (size_t)view.len && km_handle_parse(text, h) == 0;
	PyMem_Free(text);
	PyBuffer_Release(&view);
	if (!ret)
		PyErr_Format(PyExc_ValueError,
			     "not a kmalloc handle: %R (want 64 hex digits, or 32 bytes)", obj);
	return ret;
}

static PyObject *handle_text(const km_handle *h)
{
	char text[KM_HANDLE_STRLEN];

	if (km_handle_format(h, text, sizeof(text)) < 0)
		return raise_errno(errno, "format_handle", NULL);
	return PyUnicode_FromString(text);
}

PyDoc_STRVAR(parse_handle_doc, "parse_handle(handle) -> bytes\n\n"
			       "The 32 bytes of a handle given as text (64 hex digits, surrounding "
			       "white space allowed)\nor as bytes. ValueError if it is malformed.");

static PyObject *kmalloc_parse_handle(PyObject *module, PyObject *arg)
{
	km_handle h;

	if (!handle_converter(arg, &h))
		return NULL;
	return PyBytes_FromStringAndSize((const char *)h.bytes, sizeof(h.bytes));
}

PyDoc_STRVAR(format_handle_doc, "format_handle(handle) -> str\n\n"
				"The text form of a handle (64 lowercase hex digits) from its 32 "
				"bytes\n(or from text, normalised).");

static PyObject *kmalloc_format_handle(PyObject *module, PyObject *arg)
{
	km_handle h;

	if (!handle_converter(arg, &h))
		return NULL;
	return handle_text(&h);
}

/* "O&" converter for gfp flags: an int that fits an unsigned int. */
static int gfp_converter(PyObject *obj, void *out)
{
	unsigned long v;

	if (!PyLong_Check(obj)) {
		PyErr_Format(PyExc_TypeError, "gfp must be an int, not %.100s",
			     Py_TYPE(obj)->tp_name);
		return 0;
	}
	v = PyLong_AsUnsignedLong(obj);
	if (v == (unsigned long)-1 && PyErr_Occurred())
		return 0;
	if (v > UINT_MAX) {
		PyErr_SetString(PyExc_OverflowError, "gfp does not fit 32 bits");
		return 0;
	}
	*(km_gfp_t *)out = (km_gfp_t)v;
	return 1;
}

/* ---- mapping permissions ------------------------------------------------- */

/*
 * Whether every byte of [p, p + size) is mapped writable, read from
 * /proc/self/maps. An import through a handle exported read-only
 * (KM_EXPORT_RDONLY) is mapped read-only even when the importer did not ask
 * for it, and kmclient.h does not say so: a writable memoryview over it
 * would turn a Python write into SIGSEGV. When /proc cannot say, the answer
 * is no (a read-only view of writable memory is the safe mistake). Costs one
 * read of the maps file per import, next to the import's round trip and mmap.
 */
static bool range_writable(const void *p, size_t size)
{
	uintptr_t at = (uintptr_t)p, end = at + size;
	bool writable = false;
	char *line = NULL;
	size_t cap = 0;
	FILE *f;

	if (size == 0)
		return true;
	f = fopen("/proc/self/maps", "re");
	if (!f)
		return false;
	while (getline(&line, &cap, f) > 0) {
		unsigned long lo, hi;
		char perms[5];

		if (sscanf(line, "%lx-%lx %4s", &lo, &hi, perms) != 3)
			break;
		if (hi <= at)
			continue;
		if (lo > at || perms[1] != 'w')
			break; /* a hole or a read-only part */
		at = hi;
		if (at >= end) {
			writable = true;
			break;
		}
	}
	free(line);
	fclose(f);
	return writable;
}

/* ---- Buffer -------------------------------------------------------------- */

/* Whether @cl is connected and was made by another process (we are a
 * forked child of its maker). */
static bool client_forked(const struct client_obj *cl)
{
	return cl->c && cl->pid != getpid();
}

static int raise_forked(const struct client_obj *cl)
{
	PyErr_Format(PyExc_RuntimeError,
		     "kmalloc.Client of process %ld used in process %ld (forked from it): make "
		     "a new Client in this process",
		     (long)cl->pid, (long)getpid());
	return -1;
}

static int buffer_check(struct buffer_obj *b)
{
	if (!b->ptr) {
		PyErr_SetString(PyExc_ValueError, "operation on a freed kmalloc.Buffer");
		return -1;
	}
	if (client_forked(b->client))
		return raise_forked(b->client);
	return 0;
}

static void buffer_link(struct buffer_obj *b)
{
	struct client_obj *cl = b->client;

	b->prev = NULL;
	b->next = cl->live;
	if (cl->live)
		cl->live->prev = b;
	cl->live = b;
}

static void buffer_unlink(struct buffer_obj *b)
{
	if (b->prev)
		b->prev->next = b->next;
	else
		b->client->live = b->next;
	if (b->next)
		b->next->prev = b->prev;
	b->prev = b->next = NULL;
}

/* Gives @p of @kind back through @c: what km_kfree/km_vfree/km_kvfree cost
 * (no round trip to wait for; a vfree may munmap). */
static void free_memory(km_client *c, void *p, enum buffer_kind kind)
{
	switch (kind) {
	case BUFFER_KMALLOC:
		km_kfree(c, p);
		break;
	case BUFFER_VMALLOC:
		km_vfree(c, p);
		break;
	case BUFFER_KVMALLOC:
	case BUFFER_IMPORT:
	case BUFFER_KIND_MAX:
		km_kvfree(c, p);
		break;
	}
}

/* A new Buffer over @p; on failure @p is freed and NULL returned. */
static PyObject *buffer_new(struct client_obj *cl, void *p, Py_ssize_t size, enum buffer_kind kind,
			    bool readonly)
{
	struct buffer_obj *b = PyObject_New(struct buffer_obj, &buffer_type);

	if (!b) {
		free_memory(cl->c, p, kind);
		return NULL;
	}
	Py_INCREF(cl);
	b->client = cl;
	b->ptr = p;
	b->size = size;
	b->kind = kind;
	b->readonly = readonly;
	b->exports = 0;
	b->busy = 0;
	buffer_link(b);
	return (PyObject *)b;
}

static void buffer_dealloc(PyObject *self)
{
	struct buffer_obj *b = (struct buffer_obj *)self;

	/* No view can be alive: each holds a reference on b. In a forked child
	 * the memory is the parent's to give back. */
	if (b->ptr) {
		buffer_unlink(b);
		if (!client_forked(b->client))
			free_memory(b->client->c, b->ptr, b->kind);
		b->ptr = NULL;
	}
	Py_XDECREF(b->client);
	PyObject_Free(self);
}

static int buffer_getbuffer(PyObject *self, Py_buffer *view, int flags)
{
	struct buffer_obj *b = (struct buffer_obj *)self;

	if (buffer_check(b) < 0) {
		view->obj = NULL;
		return -1;
	}
	if (PyBuffer_FillInfo(view, self, b->ptr, b->size, b->readonly, flags) < 0)
		return -1;
	b->exports++;
	return 0;
}

static void buffer_releasebuffer(PyObject *self, Py_buffer *view)
{
	((struct buffer_obj *)self)->exports--;
}

static PyBufferProcs buffer_as_buffer = {
	.bf_getbuffer = buffer_getbuffer,
	.bf_releasebuffer = buffer_releasebuffer,
};

static Py_ssize_t buffer_length(PyObject *self)
{
	struct buffer_obj *b = (struct buffer_obj *)self;

	if (buffer_check(b) < 0)
		return -1;
	return b->size;
}

static PySequenceMethods buffer_as_sequence = {
	.sq_length = buffer_length,
};

static PyObject *buffer_repr(PyObject *self)
{
	struct buffer_obj *b = (struct buffer_obj *)self;

	if (!b->ptr)
		return PyUnicode_FromFormat("<kmalloc.Buffer %s, freed>",
					    buffer_kind_names[b->kind]);
	return PyUnicode_FromFormat("<kmalloc.Buffer %s of %zd bytes at %p%s>",
				    buffer_kind_names[b->kind], b->size, b->ptr,
				    b->readonly ? ", read-only" : "");
}

PyDoc_STRVAR(buffer_free_doc,
	     "free()\n\n"
	     "Give the memory back: this holder's reference is dropped; memory that was\n"
	     "exported stays alive for the other holders. Afterwards any use of the Buffer\n"
	     "raises ValueError; a second free() does nothing. Raises BufferError while a\n"
	     "memoryview or numpy array over the Buffer is alive (release or delete it\n"
	     "first), as bytearray refuses to resize.");

static PyObject *buffer_free(PyObject *self, PyObject *unused)
{
	struct buffer_obj *b = (struct buffer_obj *)self;
	struct client_obj *cl = b->client;
	void *p = b->ptr;
	PyThreadState *ts;

	if (!p)
		Py_RETURN_NONE;
	if (client_forked(cl)) {
		raise_forked(cl);
		return NULL;
	}
	if (b->exports) {
		PyErr_Format(
			PyExc_BufferError,
			"cannot free a kmalloc.Buffer while %u view(s) of it (memoryview, numpy "
			"array) are alive",
			b->exports);
		return NULL;
	}
	if (b->busy) {
		PyErr_SetString(PyExc_BufferError,
				"cannot free a kmalloc.Buffer another thread is using");
		return NULL;
	}
	buffer_unlink(b);
	b->ptr = NULL;
	cl->busy++;
	ts = PyEval_SaveThread();
	free_memory(cl->c, p, b->kind);
	PyEval_RestoreThread(ts);
	cl->busy--;
	Py_RETURN_NONE;
}

PyDoc_STRVAR(buffer_export_doc,
	     "export(uid=None, once=False, lifetime_ms=0, readonly=False) -> str\n\n"
	     "Share this memory through a new handle, returned as text (64 hex digits) to\n"
	     "pass to another process by any means (pipe, environment, file), where\n"
	     "Client.import_handle() maps the same memory. Each call makes a new handle.\n\n"
	     "uid: only that uid may import through the handle.\n"
	     "once: the handle serves one import.\n"
	     "lifetime_ms: the handle expires this long after the export (0: never).\n"
	     "readonly: every import through the handle is read-only (always so when this\n"
	     "    Buffer is itself a read-only import).\n\n"
	     "Across uids only memory allocated with GFP_SHARED can be imported.\n"
	     "Raises OSError (EINVAL: this memory cannot be exported, e.g. a 0-byte\n"
	     "kmalloc; ENOMEM; EDQUOT).");

static PyObject *buffer_export(PyObject *self, PyObject *args, PyObject *kwargs)
{
	static char *kwlist[] = { "uid", "once", "lifetime_ms", "readonly", NULL };
	struct buffer_obj *b = (struct buffer_obj *)self;
	struct client_obj *cl = b->client;
	km_export_limits lim = { 0 };
	PyObject *uid = Py_None;
	long long lifetime_ms = 0;
	int once = 0, readonly = 0;
	PyThreadState *ts;
	km_handle h;
	int ret, err;

	if (!PyArg_ParseTupleAndKeywords(args, kwargs, "|OpLp:export", kwlist, &uid, &once,
					 &lifetime_ms, &readonly))
		return NULL;
	if (buffer_check(b) < 0)
		return NULL;
	if (uid != Py_None) {
		unsigned long v = PyLong_AsUnsignedLong(uid);

		if (v == (unsigned long)-1 && PyErr_Occurred())
			return NULL;
		if (v > UINT32_MAX) {
			PyErr_SetString(PyExc_OverflowError, "uid does not fit 32 bits");
			return NULL;
		}
		lim.flags |= KM_EXPORT_UID;
		lim.uid = (uint32_t)v;
	}
	if (lifetime_ms < 0) {
		PyErr_SetString(PyExc_ValueError, "lifetime_ms must not be negative");
		return NULL;
	}
	if (readonly || b->readonly)
		lim.flags |= KM_EXPORT_RDONLY;
	lim.max_imports = once ? 1 : 0;
	lim.lifetime_ms = (uint64_t)lifetime_ms;

	b->busy++;
	cl->busy++;
	ts = PyEval_SaveThread();
	ret = km_export_limited(cl->c, b->ptr, &lim, &h);
	err = errno;
	PyEval_RestoreThread(ts);
	cl->busy--;
	b->busy--;
	if (ret < 0)
		return raise_errno(err, "export", NULL);
	return handle_text(&h);
}

/* ImportError (name "numpy") saying what to do, chained to the one numpy's
 * import raised. */
static void raise_numpy_missing(void)
{
	PyObject *type, *value, *tb, *ntype, *nvalue, *ntb, *msg, *name;

	PyErr_Fetch(&type, &value, &tb);
	PyErr_NormalizeException(&type, &value, &tb);
	msg = PyUnicode_FromString("kmalloc.Buffer.numpy() needs numpy, which this Python cannot "
				   "import (Debian: apt-get install python3-numpy); "
				   "memoryview(buffer) works without it");
	name = PyUnicode_FromString("numpy");
	if (msg && name)
		PyErr_SetImportError(msg, name, NULL);
	Py_XDECREF(msg);
	Py_XDECREF(name);
	if (!value) {
		Py_XDECREF(type);
		Py_XDECREF(tb);
		return;
	}
	PyErr_Fetch(&ntype, &nvalue, &ntb);
	PyErr_NormalizeException(&ntype, &nvalue, &ntb);
	if (nvalue) {
		if (tb)
			PyException_SetTraceback(value, tb);
		Py_INCREF(value);
		PyException_SetContext(nvalue, value);
		PyException_SetCause(nvalue, value);
	}
	PyErr_Restore(ntype, nvalue, ntb);
	Py_XDECREF(type);
	Py_XDECREF(tb);
}

/* The number of elements @shape (an int or a sequence of ints) holds, or -1
 * with an exception. */
static Py_ssize_t shape_count(PyObject *shape)
{
	Py_ssize_t count = 1, i, n;
	PyObject *seq;

	if (PyIndex_Check(shape)) {
		count = PyNumber_AsSsize_t(shape, PyExc_OverflowError);
		if (count == -1 && PyErr_Occurred())
			return -1;
		if (count < 0)
			goto err_negative;
		return count;
	}
	seq = PySequence_Fast(shape, "shape must be an int or a sequence of ints");
	if (!seq)
		return -1;
	n = PySequence_Fast_GET_SIZE(seq);
	for (i = 0; i < n; i++) {
		Py_ssize_t d =
			PyNumber_AsSsize_t(PySequence_Fast_GET_ITEM(seq, i), PyExc_OverflowError);

		if (d == -1 && PyErr_Occurred()) {
			Py_DECREF(seq);
			return -1;
		}
		if (d < 0) {
			Py_DECREF(seq);
			goto err_negative;
		}
		if (d && count > PY_SSIZE_T_MAX / d) {
			Py_DECREF(seq);
			PyErr_SetString(PyExc_OverflowError, "shape too large");
			return -1;
		}
		count *= d;
	}
	Py_DECREF(seq);
	return count;

err_negative:
	PyErr_SetString(PyExc_ValueError, "shape must not be negative");
	return -1;
}

PyDoc_STRVAR(buffer_numpy_doc,
	     "numpy(dtype='uint8', shape=None) -> numpy.ndarray\n\n"
	     "A numpy array over this memory, zero copy (numpy.frombuffer): writes through\n"
	     "the array are writes to the Buffer, and to every other holder of the memory.\n"
	     "Without shape, as many elements of dtype as fit; with shape (an int or a\n"
	     "tuple), an array of that shape over the first bytes. Not writeable for a\n"
	     "read-only import. While the array (or a view of it) is alive, free() raises\n"
	     "BufferError. Raises ImportError when numpy cannot be imported.");

static PyObject *buffer_numpy(PyObject *self, PyObject *args, PyObject *kwargs)
{
	static char *kwlist[] = { "dtype", "shape", NULL };
	struct buffer_obj *b = (struct buffer_obj *)self;
	PyObject *dtype_arg = NULL, *shape = Py_None;
	PyObject *np, *dtype = NULL, *arr = NULL, *res = NULL, *item;
	Py_ssize_t itemsize, count;

	if (!PyArg_ParseTupleAndKeywords(args, kwargs, "|OO:numpy", kwlist, &dtype_arg, &shape))
		return NULL;
	if (buffer_check(b) < 0)
		return NULL;
	np = PyImport_ImportModule("numpy");
	if (!np) {
		if (PyErr_ExceptionMatches(PyExc_ImportError))
			raise_numpy_missing();
		return NULL;
	}
	if (dtype_arg)
		dtype = PyObject_CallMethod(np, "dtype", "O", dtype_arg);
	else
		dtype = PyObject_CallMethod(np, "dtype", "s", "uint8");
	if (!dtype)
		goto out;
	item = PyObject_GetAttrString(dtype, "itemsize");
	if (!item)
		goto out;
	itemsize = PyLong_AsSsize_t(item);
	Py_DECREF(item);
	if (itemsize == -1 && PyErr_Occurred())
		goto out;
	if (itemsize <= 0) {
		PyErr_Format(PyExc_ValueError, "dtype %R has no size", dtype);
		goto out;
	}
	if (shape == Py_None) {
		count = b->size / itemsize;
	} else {
		count = shape_count(shape);
		if (count < 0)
			goto out;
		if (count > b->size / itemsize) {
			PyErr_Format(PyExc_ValueError,
				     "shape %R of %R needs more than the buffer's %zd bytes", shape,
				     dtype, b->size);
			goto out;
		}
	}
	arr = PyObject_CallMethod(np, "frombuffer", "OOn", self, dtype, count);
	if (!arr || shape == Py_None) {
		res = arr;
		arr = NULL;
		goto out;
	}
	res = PyObject_CallMethod(arr, "reshape", "(O)", shape);
out:
	Py_XDECREF(arr);
	Py_XDECREF(dtype);
	Py_DECREF(np);
	return res;
}

static PyObject *buffer_enter(PyObject *self, PyObject *unused)
{
	if (buffer_check((struct buffer_obj *)self) < 0)
		return NULL;
	Py_INCREF(self);
	return self;
}

static PyObject *buffer_exit(PyObject *self, PyObject *args)
{
	PyObject *r = buffer_free(self, NULL);

	if (!r)
		return NULL;
	Py_DECREF(r);
	Py_RETURN_FALSE;
}

static PyObject *buffer_get_size(PyObject *self, void *closure)
{
	struct buffer_obj *b = (struct buffer_obj *)self;

	if (buffer_check(b) < 0)
		return NULL;
	return PyLong_FromSsize_t(b->size);
}

static PyObject *buffer_get_readonly(PyObject *self, void *closure)
{
	struct buffer_obj *b = (struct buffer_obj *)self;

	if (buffer_check(b) < 0)
		return NULL;
	return PyBool_FromLong(b->readonly);
}

static PyObject *buffer_get_address(PyObject *self, void *closure)
{
	struct buffer_obj *b = (struct buffer_obj *)self;

	if (buffer_check(b) < 0)
		return NULL;
	return PyLong_FromVoidPtr(b->ptr);
}

static PyObject *buffer_get_kind(PyObject *self, void *closure)
{
	return PyUnicode_FromString(buffer_kind_names[((struct buffer_obj *)self)->kind]);
}

static PyObject *buffer_get_freed(PyObject *self, void *closure)
{
	return PyBool_FromLong(((struct buffer_obj *)self)->ptr == NULL);
}

static PyObject *buffer_get_client(PyObject *self, void *closure)
{
	PyObject *cl = (PyObject *)((struct buffer_obj *)self)->client;

	Py_INCREF(cl);
	return cl;
}

static PyGetSetDef buffer_getset[] = {
	{ "size", buffer_get_size, NULL, "Bytes of the Buffer (len(buffer)).", NULL },
	{ "readonly", buffer_get_readonly, NULL,
	  "True for a read-only import: views are read-only, and a write would fault.", NULL },
	{ "address", buffer_get_address, NULL,
	  "The memory's address in this process (for ctypes or C code).", NULL },
	{ "kind", buffer_get_kind, NULL,
	  "How the memory was had: 'kmalloc', 'vmalloc', 'kvmalloc' or 'import'.", NULL },
	{ "freed", buffer_get_freed, NULL, "True once free() has run (or the Client closed).",
	  NULL },
	{ "client", buffer_get_client, NULL, "The Client the Buffer belongs to.", NULL },
	{ NULL },
};

static PyMethodDef buffer_methods[] = {
	{ "free", buffer_free, METH_NOARGS, buffer_free_doc },
	{ "export", (PyCFunction)(void (*)(void))buffer_export, METH_VARARGS | METH_KEYWORDS,
	  buffer_export_doc },
	{ "numpy", (PyCFunction)(void (*)(void))buffer_numpy, METH_VARARGS | METH_KEYWORDS,
	  buffer_numpy_doc },
	{ "__enter__", buffer_enter, METH_NOARGS, "Return the Buffer itself." },
	{ "__exit__", buffer_exit, METH_VARARGS, "free() the Buffer." },
	{ NULL },
};

PyDoc_STRVAR(buffer_doc,
	     "Memory from kmallocd, made by a Client (kmalloc, kzalloc, vmalloc, kvmalloc,\n"
	     "import_handle); not instantiated directly.\n\n"
	     "It supports the buffer protocol: memoryview(buf) is a writable view of the\n"
	     "memory itself (read-only for a read-only import), and so are numpy arrays\n"
	     "from buf.numpy(). len(buf) is its size in bytes. It is given back by free(),\n"
	     "at the end of a `with` block, when it is garbage collected, or when its\n"
	     "Client closes; afterwards any use raises ValueError. It keeps its Client\n"
	     "alive.");

/* PyVarObject_HEAD_INIT() ends with a comma, which clang-format cannot know. */
/* clang-format off */
static PyTypeObject buffer_type = {
	PyVarObject_HEAD_INIT(NULL, 0)
	.tp_name = "kmalloc.Buffer",
	.tp_basicsize = sizeof(struct buffer_obj),
	.tp_dealloc = buffer_dealloc,
	.tp_repr = buffer_repr,
	.tp_as_sequence = &buffer_as_sequence,
	.tp_as_buffer = &buffer_as_buffer,
	.tp_flags = Py_TPFLAGS_DEFAULT,
	.tp_doc = buffer_doc,
	.tp_methods = buffer_methods,
	.tp_getset = buffer_getset,
};
/* clang-format on */

/* ---- Client -------------------------------------------------------------- */

static int client_check(struct client_obj *cl)
{
	if (!cl->c) {
		PyErr_SetString(PyExc_ValueError, "operation on a closed kmalloc.Client");
		return -1;
	}
	if (client_forked(cl))
		return raise_forked(cl);
	return 0;
}

static int client_init(PyObject *self, PyObject *args, PyObject *kwargs)
{
	static char *kwlist[] = { "socket", NULL };
	struct client_obj *cl = (struct client_obj *)self;
	PyObject *socket = Py_None, *path = NULL;
	const char *cpath = NULL;
	PyThreadState *ts;
	km_client *c;
	int err;

	if (!PyArg_ParseTupleAndKeywords(args, kwargs, "|O:Client", kwlist, &socket))
		return -1;
	if (cl->c) {
		PyErr_SetString(PyExc_RuntimeError, "kmalloc.Client is already connected");
		return -1;
	}
	if (socket != Py_None) {
		if (!PyUnicode_FSConverter(socket, &path))
			return -1;
		cpath = PyBytes_AS_STRING(path);
	}
	ts = PyEval_SaveThread();
	c = km_connect(cpath);
	err = errno;
	PyEval_RestoreThread(ts);
	if (!c) {
		PyObject *shown = path ? PyUnicode_DecodeFSDefault(cpath) : NULL;

		raise_errno(err, "connect",
			    shown ? PyUnicode_AsUTF8(shown)
				  : "(KMALLOC_SOCKET or the default socket)");
		Py_XDECREF(shown);
		Py_XDECREF(path);
		return -1;
	}
	Py_XDECREF(path);
	cl->c = c;
	cl->pid = getpid();
	Py_INCREF(socket);
	Py_XSETREF(cl->socket, socket);
	return 0;
}

static void client_dealloc(PyObject *self)
{
	struct client_obj *cl = (struct client_obj *)self;

	/* Every Buffer holds a reference: none is left. A forked child leaves
	 * the connection to its parent. */
	if (cl->c && !client_forked(cl))
		km_disconnect(cl->c);
	Py_XDECREF(cl->socket);
	Py_TYPE(self)->tp_free(self);
}

PyDoc_STRVAR(client_close_doc,
	     "close()\n\n"
	     "Disconnect: every Buffer of this Client is given back (and then raises\n"
	     "ValueError when used); memory exported to others stays alive for them.\n"
	     "Raises BufferError while a view (memoryview, numpy array) of one of its\n"
	     "Buffers is alive, RuntimeError while another thread is in a call on it.\n"
	     "A second close() does nothing.");

static PyObject *client_close(PyObject *self, PyObject *unused)
{
	struct client_obj *cl = (struct client_obj *)self;
	struct buffer_obj *b;
	km_client *c = cl->c;
	PyThreadState *ts;

	if (!c)
		Py_RETURN_NONE;
	if (client_forked(cl)) {
		raise_forked(cl);
		return NULL;
	}
	if (cl->busy) {
		PyErr_SetString(PyExc_RuntimeError,
				"cannot close a kmalloc.Client another thread is using");
		return NULL;
	}
	for (b = cl->live; b; b = b->next) {
		if (b->exports) {
			PyErr_Format(
				PyExc_BufferError,
				"cannot close a kmalloc.Client while a view (memoryview, numpy "
				"array) of one of its Buffers (%zd bytes) is alive",
				b->size);
			return NULL;
		}
	}
	while (cl->live) {
		b = cl->live;
		buffer_unlink(b);
		b->ptr = NULL;
	}
	cl->c = NULL;
	ts = PyEval_SaveThread();
	km_disconnect(c);
	PyEval_RestoreThread(ts);
	Py_RETURN_NONE;
}

static PyObject *client_enter(PyObject *self, PyObject *unused)
{
	if (client_check((struct client_obj *)self) < 0)
		return NULL;
	Py_INCREF(self);
	return self;
}

static PyObject *client_exit(PyObject *self, PyObject *args)
{
	PyObject *r = client_close(self, NULL);

	if (!r)
		return NULL;
	Py_DECREF(r);
	Py_RETURN_FALSE;
}

/* The allocations: a Buffer of @size bytes of @kind, or an OSError. */
static PyObject *client_alloc(struct client_obj *cl, const char *call, enum buffer_kind kind,
			      bool zero, Py_ssize_t size, km_gfp_t gfp)
{
	char detail[48];
	PyThreadState *ts;
	void *p = NULL;
	int err;

	if (client_check(cl) < 0)
		return NULL;
	if (size < 0) {
		PyErr_SetString(PyExc_ValueError, "size must not be negative");
		return NULL;
	}
	cl->busy++;
	ts = PyEval_SaveThread();
	switch (kind) {
	case BUFFER_KMALLOC:
		p = zero ? km_kzalloc(cl->c, size, gfp) : km_kmalloc(cl->c, size, gfp);
		break;
	case BUFFER_VMALLOC:
		p = km___vmalloc(cl->c, size, gfp | (zero ? KM_GFP_ZERO : 0));
		break;
	case BUFFER_KVMALLOC:
		p = km_kvmalloc(cl->c, size, gfp | (zero ? KM_GFP_ZERO : 0));
		break;
	case BUFFER_IMPORT:
	case BUFFER_KIND_MAX:
		errno = EINVAL;
		break;
	}
	err = errno;
	PyEval_RestoreThread(ts);
	cl->busy--;
	if (!p) {
		snprintf(detail, sizeof(detail), "(%zd bytes)", size);
		return raise_errno(err ? err : ENOMEM, call, detail);
	}
	return buffer_new(cl, p, size, kind, false);
}

static PyObject *client_alloc_args(PyObject *self, PyObject *args, PyObject *kwargs,
				   const char *call, enum buffer_kind kind, bool zero)
{
	static char *kwlist[] = { "size", "gfp", NULL };
	km_gfp_t gfp = KM_GFP_KERNEL;
	Py_ssize_t size;
	char fmt[32];

	snprintf(fmt, sizeof(fmt), "n|O&:%s", call);
	if (!PyArg_ParseTupleAndKeywords(args, kwargs, fmt, kwlist, &size, gfp_converter, &gfp))
		return NULL;
	return client_alloc((struct client_obj *)self, call, kind, zero, size, gfp);
}

PyDoc_STRVAR(client_kmalloc_doc,
	     "kmalloc(size, gfp=GFP_KERNEL) -> Buffer\n\n"
	     "Physically contiguous memory, not cleared, up to 4 MiB (km_kmalloc: the\n"
	     "size is rounded up to a slab class or a power-of-two number of pages).\n"
	     "gfp: GFP_* flags; GFP_SHARED makes it importable by other uids. Raises\n"
	     "OSError: ENOMEM (the pool cannot serve it, or size > 4 MiB), EDQUOT.");

static PyObject *client_kmalloc(PyObject *self, PyObject *args, PyObject *kwargs)
{
	return client_alloc_args(self, args, kwargs, "kmalloc", BUFFER_KMALLOC, false);
}

PyDoc_STRVAR(client_kzalloc_doc, "kzalloc(size, gfp=GFP_KERNEL) -> Buffer\n\n"
				 "kmalloc(), cleared.");

static PyObject *client_kzalloc(PyObject *self, PyObject *args, PyObject *kwargs)
{
	return client_alloc_args(self, args, kwargs, "kzalloc", BUFFER_KMALLOC, true);
}

PyDoc_STRVAR(client_vmalloc_doc,
	     "vmalloc(size, gfp=GFP_KERNEL) -> Buffer\n\n"
	     "Virtually contiguous memory made of whole 2 MiB frames, not cleared\n"
	     "(GFP_ZERO clears it), page aligned (km___vmalloc). gfp: GFP_* flags;\n"
	     "GFP_SHARED makes it importable by other uids. Raises OSError: EINVAL\n"
	     "(size 0), ENOMEM, EDQUOT.");

static PyObject *client_vmalloc(PyObject *self, PyObject *args, PyObject *kwargs)
{
	return client_alloc_args(self, args, kwargs, "vmalloc", BUFFER_VMALLOC, false);
}

PyDoc_STRVAR(client_kvmalloc_doc,
	     "kvmalloc(size, gfp=GFP_KERNEL) -> Buffer\n\n"
	     "kmalloc(), falling back to vmalloc() above one page as the kernel's\n"
	     "kvmalloc() does. Raises OSError as they do.");

static PyObject *client_kvmalloc(PyObject *self, PyObject *args, PyObject *kwargs)
{
	return client_alloc_args(self, args, kwargs, "kvmalloc", BUFFER_KVMALLOC, false);
}

PyDoc_STRVAR(client_import_doc,
	     "import_handle(handle, readonly=False) -> Buffer\n\n"
	     "The memory a handle names (from Buffer.export() in this or another process),\n"
	     "as one more holder of it: writes are seen by every holder, and the memory\n"
	     "lives until the last holder frees it.\n\n"
	     "handle: the text form (64 hex digits, str or bytes, surrounding white space\n"
	     "    allowed) or the 32 bytes; ValueError when malformed.\n"
	     "readonly: map it read-only (True or IMPORT_RDONLY); a handle exported\n"
	     "    read-only gives a read-only Buffer anyway (see Buffer.readonly).\n\n"
	     "Raises OSError: ENOENT (no such handle, or its memory is gone), EACCES\n"
	     "(revoked, expired, used up, meant for another uid, or of another uid's\n"
	     "domain and not allocated with GFP_SHARED), EDQUOT, ENOMEM.\n"
	     "If the handle is later revoked, the mapping of such an import becomes\n"
	     "inaccessible at the next library call: touching it then faults (SIGSEGV).");

static PyObject *client_import_handle(PyObject *self, PyObject *args, PyObject *kwargs)
{
	static char *kwlist[] = { "handle", "readonly", NULL };
	struct client_obj *cl = (struct client_obj *)self;
	bool writable = true;
	PyThreadState *ts;
	int readonly = 0, err;
	size_t size = 0;
	km_handle h;
	void *p;

	if (!PyArg_ParseTupleAndKeywords(args, kwargs, "O&|p:import_handle", kwlist,
					 handle_converter, &h, &readonly))
		return NULL;
	if (client_check(cl) < 0)
		return NULL;
	cl->busy++;
	ts = PyEval_SaveThread();
	p = km_import_flags(cl->c, &h, readonly ? KM_IMPORT_RDONLY : 0, &size);
	err = errno;
	if (p && !readonly)
		writable = range_writable(p, size);
	PyEval_RestoreThread(ts);
	cl->busy--;
	if (!p)
		return raise_errno(err, "import_handle", NULL);
	if (size > PY_SSIZE_T_MAX) {
		km_kvfree(cl->c, p);
		PyErr_SetString(PyExc_OverflowError, "import larger than a Py_ssize_t");
		return NULL;
	}
	return buffer_new(cl, p, (Py_ssize_t)size, BUFFER_IMPORT, readonly || !writable);
}

PyDoc_STRVAR(client_revoke_doc,
	     "revoke(handle) -> int\n\n"
	     "End a handle this uid exported: no import through it any more, and every\n"
	     "import made through it ends (the importers' mappings become inaccessible).\n"
	     "The exporter's own Buffer stays. Returns the number of imports ended.\n"
	     "Raises OSError: ENOENT (no such handle), EACCES (another uid's handle).");

static PyObject *client_revoke(PyObject *self, PyObject *arg)
{
	struct client_obj *cl = (struct client_obj *)self;
	PyThreadState *ts;
	km_handle h;
	int ret, err;

	if (!handle_converter(arg, &h))
		return NULL;
	if (client_check(cl) < 0)
		return NULL;
	cl->busy++;
	ts = PyEval_SaveThread();
	ret = km_revoke(cl->c, &h);
	err = errno;
	PyEval_RestoreThread(ts);
	cl->busy--;
	if (ret < 0)
		return raise_errno(err, "revoke", NULL);
	return PyLong_FromLong(ret);
}

PyDoc_STRVAR(client_meminfo_doc,
	     "meminfo() -> dict\n\n"
	     "The pool's totals in bytes, as kmctl meminfo shows them: total, free, slab,\n"
	     "vmalloc_used, reserve, frame_size, available, quarantined, and hugetlb\n"
	     "(True when the pool is hugepage-backed).");

static PyObject *client_meminfo(PyObject *self, PyObject *unused)
{
	struct client_obj *cl = (struct client_obj *)self;
	PyThreadState *ts;
	km_meminfo mi;
	int ret, err;

	if (client_check(cl) < 0)
		return NULL;
	cl->busy++;
	ts = PyEval_SaveThread();
	ret = km_get_meminfo(cl->c, &mi);
	err = errno;
	PyEval_RestoreThread(ts);
	cl->busy--;
	if (ret < 0)
		return raise_errno(err, "meminfo", NULL);
	return Py_BuildValue(
		"{s:K,s:K,s:K,s:K,s:K,s:K,s:N,s:K,s:K}", "total", (unsigned long long)mi.total,
		"free", (unsigned long long)mi.free, "slab", (unsigned long long)mi.slab,
		"vmalloc_used", (unsigned long long)mi.vmalloc_used, "reserve",
		(unsigned long long)mi.reserve, "frame_size", (unsigned long long)mi.frame_size,
		"hugetlb", PyBool_FromLong(mi.hugetlb != 0), "available",
		(unsigned long long)mi.available, "quarantined",
		(unsigned long long)mi.quarantined);
}

static PyObject *client_get_closed(PyObject *self, void *closure)
{
	return PyBool_FromLong(((struct client_obj *)self)->c == NULL);
}

static PyObject *client_get_socket(PyObject *self, void *closure)
{
	PyObject *s = ((struct client_obj *)self)->socket;

	if (!s)
		s = Py_None;
	Py_INCREF(s);
	return s;
}

static PyObject *client_repr(PyObject *self)
{
	struct client_obj *cl = (struct client_obj *)self;
	PyObject *s = cl->socket ? cl->socket : Py_None;

	return PyUnicode_FromFormat("<kmalloc.Client socket=%R%s>", s, cl->c ? "" : ", closed");
}

static PyGetSetDef client_getset[] = {
	{ "closed", client_get_closed, NULL, "True once close() has run.", NULL },
	{ "socket", client_get_socket, NULL, "The socket asked for (None: the default).", NULL },
	{ NULL },
};

#define KW_METHOD(name, fn, doc)                                                                   \
	{                                                                                          \
		name, (PyCFunction)(void (*)(void))fn, METH_VARARGS | METH_KEYWORDS, doc           \
	}

static PyMethodDef client_methods[] = {
	KW_METHOD("kmalloc", client_kmalloc, client_kmalloc_doc),
	KW_METHOD("kzalloc", client_kzalloc, client_kzalloc_doc),
	KW_METHOD("vmalloc", client_vmalloc, client_vmalloc_doc),
	KW_METHOD("kvmalloc", client_kvmalloc, client_kvmalloc_doc),
	KW_METHOD("import_handle", client_import_handle, client_import_doc),
	{ "revoke", client_revoke, METH_O, client_revoke_doc },
	{ "meminfo", client_meminfo, METH_NOARGS, client_meminfo_doc },
	{ "close", client_close, METH_NOARGS, client_close_doc },
	{ "__enter__", client_enter, METH_NOARGS, "Return the Client itself." },
	{ "__exit__", client_exit, METH_VARARGS, "close() the Client." },
	{ NULL },
};

PyDoc_STRVAR(client_doc,
	     "Client(socket=None)\n\n"
	     "A connection to kmallocd (km_connect). socket: the daemon's socket path;\n"
	     "None means $KMALLOC_SOCKET, else /run/kmalloc/kmallocd.sock. Raises OSError\n"
	     "when it cannot connect (ENOENT/ECONNREFUSED: no daemon there; EACCES: the\n"
	     "daemon refuses this uid).\n\n"
	     "Allocations and imports return Buffers. A Client is a context manager; close()\n"
	     "(or the end of the `with` block, or garbage collection once no Buffer is\n"
	     "left) disconnects and gives everything back. Methods may be called from\n"
	     "several threads at once; they release the GIL while the library works.");

/* clang-format off */
static PyTypeObject client_type = {
	PyVarObject_HEAD_INIT(NULL, 0)
	.tp_name = "kmalloc.Client",
	.tp_basicsize = sizeof(struct client_obj),
	.tp_dealloc = client_dealloc,
	.tp_repr = client_repr,
	.tp_flags = Py_TPFLAGS_DEFAULT | Py_TPFLAGS_BASETYPE,
	.tp_doc = client_doc,
	.tp_methods = client_methods,
	.tp_getset = client_getset,
	.tp_init = client_init,
	.tp_new = PyType_GenericNew,
};
/* clang-format on */

/* ---- module -------------------------------------------------------------- */

static PyMethodDef kmalloc_methods[] = {
	{ "parse_handle", kmalloc_parse_handle, METH_O, parse_handle_doc },
	{ "format_handle", kmalloc_format_handle, METH_O, format_handle_doc },
	{ NULL },
};

PyDoc_STRVAR(kmalloc_doc,
	     "Memory from kmallocd, the kmalloc broker, through libkmclient.\n\n"
	     "    import kmalloc\n"
	     "    with kmalloc.Client() as c:              # $KMALLOC_SOCKET or the default\n"
	     "        buf = c.kmalloc(4096)                # a Buffer: the buffer protocol\n"
	     "        memoryview(buf)[:5] = b'hello'       # zero copy, writable\n"
	     "        a = buf.numpy('float64')             # numpy array over the same memory\n"
	     "        handle = buf.export()                # 64 hex digits for another process\n"
	     "        # elsewhere: c2.import_handle(handle) is the same memory\n"
	     "        del a\n"
	     "        buf.free()\n\n"
	     "Client(socket=None) connects; its kmalloc, kzalloc, vmalloc, kvmalloc and\n"
	     "import_handle give Buffers; revoke(handle) ends a handle; meminfo() gives the\n"
	     "pool's totals. Errors from the library are OSError with its errno.\n"
	     "Across uids only memory allocated with GFP_SHARED can be imported.");

static struct PyModuleDef kmalloc_module = {
	PyModuleDef_HEAD_INIT, .m_name = "kmalloc",	     .m_doc = kmalloc_doc,
	.m_size = -1,	       .m_methods = kmalloc_methods,
};

PyMODINIT_FUNC PyInit_kmalloc(void);

PyMODINIT_FUNC PyInit_kmalloc(void)
{
	static const struct {
		const char *name;
		unsigned long value;
	} constants[] = {
		{ "GFP_KERNEL", KM_GFP_KERNEL },
		{ "GFP_ATOMIC", KM_GFP_ATOMIC },
		{ "GFP_NOWAIT", KM_GFP_NOWAIT },
		{ "GFP_HIGH", KM_GFP_HIGH },
		{ "GFP_NOFAIL", KM_GFP_NOFAIL },
		{ "GFP_NORETRY", KM_GFP_NORETRY },
		{ "GFP_RETRY_MAYFAIL", KM_GFP_RETRY_MAYFAIL },
		{ "GFP_NOWARN", KM_GFP_NOWARN },
		{ "GFP_ZERO", KM_GFP_ZERO },
		{ "GFP_SHARED", KM_GFP_SHARED },
		/* the kernel's bits, spelled as in the kernel */
		{ "__GFP_HIGH", KM___GFP_HIGH },
		{ "__GFP_IO", KM___GFP_IO },
		{ "__GFP_FS", KM___GFP_FS },
		{ "__GFP_ZERO", KM___GFP_ZERO },
		{ "__GFP_DIRECT_RECLAIM", KM___GFP_DIRECT_RECLAIM },
		{ "__GFP_KSWAPD_RECLAIM", KM___GFP_KSWAPD_RECLAIM },
		{ "__GFP_NOWARN", KM___GFP_NOWARN },
		{ "__GFP_RETRY_MAYFAIL", KM___GFP_RETRY_MAYFAIL },
		{ "__GFP_NOFAIL", KM___GFP_NOFAIL },
		{ "__GFP_NORETRY", KM___GFP_NORETRY },
		{ "__GFP_SHARED", KM___GFP_SHARED },
		{ "IMPORT_RDONLY", KM_IMPORT_RDONLY },
		{ "HANDLE_STRLEN", KM_HANDLE_STRLEN - 1 },
		{ "PAGE_SIZE", KM_PAGE_SIZE },
		{ "KMALLOC_MAX_SIZE", KM_KMALLOC_MAX_SIZE },
		{ "KMALLOC_MAX_CACHE_SIZE", KM_KMALLOC_MAX_CACHE_SIZE },
	};
	PyObject *m;
	size_t i;

	if (PyType_Ready(&client_type) < 0 || PyType_Ready(&buffer_type) < 0)
		return NULL;
	m = PyModule_Create(&kmalloc_module);
	if (!m)
		return NULL;
	for (i = 0; i < sizeof(constants) / sizeof(constants[0]); i++) {
		PyObject *v = PyLong_FromUnsignedLong(constants[i].value);

		if (!v || PyModule_AddObject(m, constants[i].name, v) < 0) {
			Py_XDECREF(v);
			goto err;
		}
	}
	Py_INCREF(&client_type);
	if (PyModule_AddObject(m, "Client", (PyObject *)&client_type) < 0) {
		Py_DECREF(&client_type);
		goto err;
	}
	Py_INCREF(&buffer_type);
	if (PyModule_AddObject(m, "Buffer", (PyObject *)&buffer_type) < 0) {
		Py_DECREF(&buffer_type);
		goto err;
	}
	return m;

err:
	Py_DECREF(m);
	return NULL;
}
