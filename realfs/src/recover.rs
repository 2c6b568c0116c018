//! Mounting crash images with the real kernel (to come).
