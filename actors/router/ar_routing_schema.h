/*  ar_routing_schema: schemas/config/routing.config.schema.json describes exactly what
    ar_routing_config accepts. Test only: a JSON Schema checker for the keywords the schema uses
    holds the schema and the parser to the same verdict on sample documents, so neither can
    drift from the other.
*/
#ifndef AR_ROUTING_SCHEMA_H
#define AR_ROUTING_SCHEMA_H

#include <stdbool.h>

void ar_routing_schema_test (bool verbose);

#endif
