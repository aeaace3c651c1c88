/* headertest.cpp - the same checks as headertest.c, compiled as C++. */
#include "headertest.c"
