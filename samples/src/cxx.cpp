#include <string>

extern "C" int cxx_len(const char *s)
{
	return static_cast<int>(std::string(s).size());
}
