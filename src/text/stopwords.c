/* stopwords.c — the English stop lists the analyzer can use. Words are in
 * the analyzer's normalized form: lowercase, apostrophes removed. */
#include "text/stopwords.h"

/* The classic 33-word English list used by Lucene's StandardAnalyzer. */
const char *const text_stop_lucene[] = {
    "a", "an", "and", "are", "as", "at", "be", "but", "by", "for", "if", "in", "into",
    "is", "it", "no", "not", "of", "on", "or", "such", "that", "the", "their", "then",
    "there", "these", "they", "this", "to", "was", "will", "with",
};
const size_t text_stop_lucene_n = sizeof text_stop_lucene / sizeof text_stop_lucene[0];

/* Snowball's English stop list (contractions without their apostrophe). */
const char *const text_stop_english[] = {
    "i", "me", "my", "myself", "we", "our", "ours", "ourselves", "you", "your", "yours",
    "yourself", "yourselves", "he", "him", "his", "himself", "she", "her", "hers",
    "herself", "it", "its", "itself", "they", "them", "their", "theirs", "themselves",
    "what", "which", "who", "whom", "this", "that", "these", "those", "am", "is", "are",
    "was", "were", "be", "been", "being", "have", "has", "had", "having", "do", "does",
    "did", "doing", "would", "should", "could", "ought", "im", "youre", "hes", "shes",
    "were", "theyre", "ive", "youve", "weve", "theyve", "id", "youd", "hed", "shed",
    "wed", "theyd", "ill", "youll", "hell", "shell", "well", "theyll", "isnt", "arent",
    "wasnt", "werent", "hasnt", "havent", "hadnt", "doesnt", "dont", "didnt", "wont",
    "wouldnt", "shant", "shouldnt", "cant", "cannot", "couldnt", "mustnt", "lets",
    "thats", "whos", "whats", "heres", "theres", "whens", "wheres", "whys", "hows", "a",
    "an", "the", "and", "but", "if", "or", "because", "as", "until", "while", "of", "at",
    "by", "for", "with", "about", "against", "between", "into", "through", "during",
    "before", "after", "above", "below", "to", "from", "up", "down", "in", "out", "on",
    "off", "over", "under", "again", "further", "then", "once", "here", "there", "when",
    "where", "why", "how", "all", "any", "both", "each", "few", "more", "most", "other",
    "some", "such", "no", "nor", "not", "only", "own", "same", "so", "than", "too", "very",
};
const size_t text_stop_english_n = sizeof text_stop_english / sizeof text_stop_english[0];
