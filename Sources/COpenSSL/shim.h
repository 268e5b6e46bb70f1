#include <openssl/ssl.h>
#include <openssl/hmac.h>
