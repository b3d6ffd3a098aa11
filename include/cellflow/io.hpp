// Umbrella header of everything: cellflow/cellflow.hpp (all that needs only Eigen) plus the file
// formats that need zlib:
//
//   namespace cellflow::data     IDX files of MNIST and Fashion-MNIST, raw or gzip (data/idx.hpp)
//   namespace cellflow::io       NumPy .npz archives (io/npz.hpp) and the ZIP container under
//                                them (io/zip.hpp)
//
// Kept out of cellflow/cellflow.hpp because these need zlib: link cellflow::io (which brings
// zlib), not only cellflow::cellflow, to use this header.
#pragma once

#include "cellflow/cellflow.hpp"
#include "cellflow/data/idx.hpp"
#include "cellflow/io/npz.hpp"
#include "cellflow/io/zip.hpp"
