/* value: the numbers of config values (whole numbers, seconds, sizes), pure and locale-free. */
#include <ctype.h>
#include <errno.h>
#include <stdbool.h>
#include <string.h>

#include "config/parser.h"
#include "lib/limits.h"

/* A decimal number: digits with an optional fraction, nothing else, so no sign, exponent, hex,
 * "inf" or "nan". Done by hand because strtod follows the locale's decimal point. Up to 15
 * significant digits keep mantissa / 10^k exact, hence rounded as strtod would. */
int
value_decimal(const char *text, double *ret_value)
{
	unsigned long long mantissa = 0;
	unsigned digits = 0, fraction_digits = 0;
	bool point = false, any = false;
	for (const char *c = text; *c; c++) {
		if (*c == '.' && !point) {
			point = true;
			continue;
		}
		if (!isdigit((unsigned char)*c))
			return -EINVAL;
		any = true;
		if (mantissa == 0 && *c == '0' && !point)
			continue;
		if (++digits > 15)
			return -EINVAL;
		mantissa = mantissa * 10 + (unsigned)(*c - '0');
		fraction_digits += point;
	}
	if (!any)
		return -EINVAL;
	double scale = 1;
	while (fraction_digits--)
		scale *= 10;
	*ret_value = (double)mantissa / scale;
	return 0;
}

/* Digits only: no sign, no space, no 0x. */
int
value_unsigned(const char *text, unsigned base, unsigned long max, unsigned long *ret_value)
{
	unsigned long value = 0;
	if (*text == '\0')
		return -EINVAL;
	for (const char *c = text; *c; c++) {
		if (*c < '0' || *c >= '0' + (int)base)
			return -EINVAL;
		value = value * base + (unsigned long)(*c - '0');
		if (value > max)
			return -EINVAL;
	}
	*ret_value = value;
	return 0;
}

int
value_seconds(const char *text, bool positive, double *ret_seconds)
{
	double seconds;
	if (value_decimal(text, &seconds) < 0 || seconds > CONFIG_MAX_SECONDS ||
	    (positive && seconds <= 0))
		return -EINVAL;
	*ret_seconds = seconds;
	return 0;
}

/* Units are binary (K is KiB...), in either case. */
int
value_size(const char *text, unsigned long long *ret_bytes)
{
	char number[32];
	size_t length = strlen(text);
	unsigned long long unit = 1;
	if (length > 0 && length < sizeof(number)) {
		switch (text[length - 1]) {
		case 'K':
		case 'k':
			unit = 1ULL << 10;
			length--;
			break;
		case 'M':
		case 'm':
			unit = 1ULL << 20;
			length--;
			break;
		case 'G':
		case 'g':
			unit = 1ULL << 30;
			length--;
			break;
		case 'T':
		case 't':
			unit = 1ULL << 40;
			length--;
			break;
		}
	}
	double amount;
	if (length == 0 || length >= sizeof(number))
		return -EINVAL;
	memcpy(number, text, length);
	number[length] = '\0';
	if (value_decimal(number, &amount) < 0 || amount * (double)unit > 1e18)
		return -EINVAL;
	*ret_bytes = (unsigned long long)(amount * (double)unit);
	return 0;
}
