"""Teachers: large spatio-temporal graph models (Graph WaveNet, STAEformer, AGCRN)."""
