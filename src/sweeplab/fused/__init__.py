"""The fused engine: K same-shape MLPs trained as one stacked model, behind the trainer's engine interface."""
