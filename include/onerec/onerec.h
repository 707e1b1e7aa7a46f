/* libonerec: train and serve a OneRec-style generative recommender. Umbrella header. */
#ifndef ONEREC_ONEREC_H
#define ONEREC_ONEREC_H

#include "onerec/version.h"
#include "onerec/common.h"
#include "onerec/context.h"
#include "onerec/tensor.h"

#endif
