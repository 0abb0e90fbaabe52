"""smc: particle filters, PaRIS online smoothing, particle Gibbs and particle learning for any model of the shared interface."""
