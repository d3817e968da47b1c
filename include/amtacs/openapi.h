/* openapi: amtacs-web's OpenAPI 3.1 document (src/web/openapi.json),
 * compiled in at build time (cmake/embed_file.cmake) and served at
 * GET /api/v1/openapi.json. tests/unit/test_openapi.c checks it against
 * webapi_routes(). */
#ifndef AMTACS_OPENAPI_H
#define AMTACS_OPENAPI_H

#include <stddef.h>

/* The document's bytes (JSON), NUL-terminated. */
extern const char amtacs_openapi_json[];
/* Its length without the NUL. */
extern const size_t amtacs_openapi_json_len;

#endif
