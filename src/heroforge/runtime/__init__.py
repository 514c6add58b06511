"""What a process needs to run the networks well: process groups and collectives (dist), the C
library's allocator settings for CPU training and generation (allocator), starting one worker
per GPU and knowing whether this process is one of several (launch), and the stop signals a
training process notes from start to end (signals). Below train, metrics and generate; imports
nothing of heroforge but errors."""
