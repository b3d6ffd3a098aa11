// Umbrella header for reading data files: IDX (MNIST) readers, datasets and shuffled batches.
// Kept out of cellflow.hpp because it needs zlib: link cellflow::io to use it.
#pragma once

#include "cellflow/data/batches.hpp"
#include "cellflow/data/dataset.hpp"
#include "cellflow/data/idx.hpp"
