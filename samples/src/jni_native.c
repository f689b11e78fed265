/* A JNI-style library: JNI_OnLoad, a function the JVM itself exports (JNI_GetCreatedJavaVMs, reached
 * through the PLT), and a fortified memcpy/snprintf into a local buffer (__memcpy_chk, __snprintf_chk). */
#include <stdio.h>
#include <string.h>

typedef int jint;
extern jint JNI_GetCreatedJavaVMs(void **vms, jint size, jint *count);

jint JNI_OnLoad(void *vm, void *reserved)
{
	(void)vm;
	(void)reserved;
	return 0x00010008; /* JNI_VERSION_1_8 */
}

int Java_demo_Native_describe(const char *in, size_t n)
{
	char buf[16];
	jint count = 0;
	memcpy(buf, in, n);
	JNI_GetCreatedJavaVMs(0, 0, &count);
	return snprintf(buf, sizeof buf, "%d %s", count, in);
}
