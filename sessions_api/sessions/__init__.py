"""Reading sessions back: lists, one session, timelines, explorer."""
