"""Supervised tensor networks as pure array functions (no scikit-learn here): MPS models
(:mod:`.mps`) and low-rank tensor regression (:mod:`.regression`)."""
