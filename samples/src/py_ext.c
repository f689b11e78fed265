/* A CPython-style extension module: PyInit_demo calls PyLong_FromLong, which the interpreter exports. */
typedef struct _object PyObject;
extern PyObject *PyLong_FromLong(long value);

PyObject *PyInit_demo(void)
{
	return PyLong_FromLong(42);
}
