"""Face detection, embedding, quality gating, registries and the FAISS index."""
