"""Reading sessions back: lists, one session, timelines, the explorer, the error feed, detail."""
