// Umbrella header for the file formats that need zlib: IDX (MNIST) readers, datasets and shuffled
// batches, and NumPy .npz import/export.
// Kept out of cellflow.hpp because it needs zlib: link cellflow::io to use it.
#pragma once

#include "cellflow/data/batches.hpp"
#include "cellflow/data/dataset.hpp"
#include "cellflow/data/idx.hpp"
#include "cellflow/io/npz.hpp"
