//! The session virtual filesystem (being built; see issue "Session virtual filesystem").
