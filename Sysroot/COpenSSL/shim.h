// OpenSSL 3 as Weir uses it. Only WeirIO imports this module.
#ifndef WEIR_COPENSSL_SHIM_H
#define WEIR_COPENSSL_SHIM_H
#include <openssl/ssl.h>
#include <openssl/err.h>
#include <openssl/sha.h>
#include <openssl/hmac.h>
#include <openssl/evp.h>
#include <openssl/rand.h>
#endif
