/* libonerec: train and serve a OneRec-style generative recommender. Umbrella header. */
#ifndef ONEREC_ONEREC_H
#define ONEREC_ONEREC_H

#include "onerec/version.h"
#include "onerec/common.h"
#include "onerec/context.h"
#include "onerec/tensor.h"
#include "onerec/catalog.h"
#include "onerec/collab.h"
#include "onerec/model.h"
#include "onerec/data.h"
#include "onerec/tokenizer.h"
#include "onerec/train.h"
#include "onerec/generate.h"
#include "onerec/align.h"

#endif
