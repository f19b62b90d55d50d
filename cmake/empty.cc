// Placeholder translation unit for a layer whose sources do not exist yet.
