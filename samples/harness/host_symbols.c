/* Linked with -rdynamic into host_probe: what a JVM and CPython export to the libraries they dlopen. */
typedef int jint;
typedef struct _object PyObject;

jint JNI_GetCreatedJavaVMs(void **vms, jint size, jint *count)
{
	(void)vms;
	(void)size;
	*count = 0;
	return 0;
}

PyObject *PyLong_FromLong(long value)
{
	(void)value;
	return 0;
}
