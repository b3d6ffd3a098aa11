// cellflow::compiled: the explicit instantiation definitions for double of the templates that
// cellflow/extern_templates.hpp declares (see there), compiled once for every program that links
// the companion library.
#define CELLFLOW_DEFINE_EXTERN_TEMPLATES
#include "cellflow/cellflow.hpp"

CELLFLOW_DETAIL_INSTANTIATE(, double)
