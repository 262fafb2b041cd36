"""The digital twin of the plant: fed-batch bioreactors with Raman, and the imaging incubator."""
