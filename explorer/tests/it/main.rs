//! The explorer's integration tests, in one binary (one link on two cores, not three):
//! the litmus corpus with golden counts, the brute-force cross-check of the reduction, and the
//! rule mutation test.

mod bounds;
mod litmus;
mod order;
mod reduction;
mod rules;
