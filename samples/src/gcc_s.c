/* _Unwind_Backtrace lives in libgcc_s.so.1. */
#include <unwind.h>

static _Unwind_Reason_Code count(struct _Unwind_Context *ctx, void *arg)
{
	(void)ctx;
	++*(int *)arg;
	return _URC_NO_REASON;
}

int frame_count(void)
{
	int n = 0;
	_Unwind_Backtrace(count, &n);
	return n;
}
